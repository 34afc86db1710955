package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/vishvananda/netns"
)

// sysctlPath maps "net.ipv4.tcp_retries2" to "/proc/sys/net/ipv4/tcp_retries2".
func sysctlPath(key string) (string, error) {
	if key == "" || strings.ContainsAny(key, "/ ") || strings.Contains(key, "..") {
		return "", fmt.Errorf("sysctl %q is not a dotted kernel parameter name such as net.ipv4.tcp_retries2", key)
	}
	if !strings.HasPrefix(key, "net.") {
		return "", fmt.Errorf("sysctl %q is not per network namespace: only net.* parameters can be set in a lab", key)
	}
	return filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/")), nil
}

// writeSysctls writes kernel parameters inside namespace ns. /proc/sys/net
// resolves to the namespace of the thread that opens it, so the writes happen
// on a thread set into ns, never in the host's namespace.
func writeSysctls(ns netns.NsHandle, kv map[string]string) error {
	if len(kv) == 0 {
		return nil
	}
	paths := make(map[string]string, len(kv))
	for k := range kv {
		p, err := sysctlPath(k)
		if err != nil {
			return err
		}
		paths[k] = p
	}
	return inNamespace(ns, func() error {
		for k, v := range kv {
			if err := os.WriteFile(paths[k], []byte(v), 0); err != nil {
				return fmt.Errorf("set %s=%s: %w", k, v, err)
			}
		}
		return nil
	})
}

// readSysctl reads one kernel parameter inside namespace ns.
func readSysctl(ns netns.NsHandle, key string) (string, error) {
	p, err := sysctlPath(key)
	if err != nil {
		return "", err
	}
	var out string
	err = inNamespace(ns, func() error {
		b, err := os.ReadFile(p)
		out = strings.TrimSpace(string(b))
		return err
	})
	return out, err
}

// namespaceDefaults are the values a new network namespace starts with for
// the per-namespace TCP parameters halfopen's detectors and reports read:
// tcp_sk_init() in net/ipv4/tcp_ipv4.c sets them from the constants of
// include/net/tcp.h (TCP_KEEPALIVE_TIME 7200 s, TCP_KEEPALIVE_INTVL 75 s,
// TCP_KEEPALIVE_PROBES 9, TCP_RETR1 3, TCP_RETR2 15, TCP_SYN_RETRIES 6),
// whatever the host's own namespace has. A lab test reads them back from a
// fresh namespace.
var namespaceDefaults = map[string]string{
	"net.ipv4.tcp_keepalive_time":   "7200",
	"net.ipv4.tcp_keepalive_intvl":  "75",
	"net.ipv4.tcp_keepalive_probes": "9",
	"net.ipv4.tcp_retries1":         "3",
	"net.ipv4.tcp_retries2":         "15",
	"net.ipv4.tcp_syn_retries":      "6",
}

// namespaceDefault returns the value a kernel parameter has in a new lab
// namespace, or "" when halfopen does not know it.
func namespaceDefault(key string) string { return namespaceDefaults[key] }

// recordedSysctls are the kernel parameters every cell records per host,
// read back from its namespaces, beside any the cell set.
func recordedSysctls() []string {
	keys := make([]string, 0, len(namespaceDefaults))
	for k := range namespaceDefaults {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
