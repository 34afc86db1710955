package harness

import (
	"fmt"
	"os"
	"path/filepath"
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
