package protocol

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// The environment variables the harness hands a program.
const (
	EnvProtocol  = "HALFOPEN_PROTOCOL"  // "1"
	EnvRole      = "HALFOPEN_ROLE"      // "watcher" or "peer"
	EnvSide      = "HALFOPEN_SIDE"      // "server" or "client": the watcher's end
	EnvAddr      = "HALFOPEN_ADDR"      // IP:PORT to listen on or to dial
	EnvConfig    = "HALFOPEN_CONFIG"    // JSON object of strings: the spec's other keys
	EnvReconnect = "HALFOPEN_RECONNECT" // "1": a disturbance run; connect again after dead
)

// Role is what a program is in a sample.
type Role string

// The roles.
const (
	RoleWatcher Role = "watcher" // the detector under test
	RolePeer    Role = "peer"    // what stands on the other end (peer=self or peer=PATH)
)

// Side names the watcher's end of the connection, whichever role reads it.
type Side string

// The sides.
const (
	// SideServer: the watcher listens and accepts, and is blocked in recv,
	// the reference text's passive server; its client (the peer) dials.
	SideServer Side = "server"
	// SideClient: the watcher dials (a pool or RPC client watching its
	// server), the peer listens.
	SideClient Side = "client"
)

// ParseSide checks a side name, as a spec or the command line gives it.
func ParseSide(s string) (Side, error) {
	switch Side(s) {
	case SideClient, SideServer:
		return Side(s), nil
	}
	return "", fmt.Errorf("side %q is not known; sides are client (the watcher dials) and server (the watcher accepts)", s)
}

// Env is the environment of one protocol-v1 program.
type Env struct {
	Role      Role
	Side      Side
	Addr      string // IP:PORT
	Config    Config
	Reconnect bool // connect again after dead: every false positive is counted
}

// Listens reports whether this program's end listens (rather than dials).
func (e Env) Listens() bool { return (e.Side == SideServer) == (e.Role == RoleWatcher) }

// ReadEnv reads the environment through getenv (os.Getenv in a program). An
// unset HALFOPEN_ROLE means watcher; everything else must be there and right.
func ReadEnv(getenv func(string) string) (Env, error) {
	switch v := getenv(EnvProtocol); v {
	case strconv.Itoa(Version):
	case "":
		return Env{}, fmt.Errorf("%s is not set: this program speaks halfopen's protocol v1 and is started by halfopen (docs/protocol.md)", EnvProtocol)
	default:
		return Env{}, fmt.Errorf("%s is %q, but this program speaks protocol %d", EnvProtocol, v, Version)
	}
	var env Env
	switch r := Role(getenv(EnvRole)); r {
	case RoleWatcher, RolePeer:
		env.Role = r
	case "":
		env.Role = RoleWatcher
	default:
		return Env{}, fmt.Errorf("%s is %q, not %s or %s", EnvRole, r, RoleWatcher, RolePeer)
	}
	switch s := Side(getenv(EnvSide)); s {
	case SideServer, SideClient:
		env.Side = s
	case "":
		return Env{}, fmt.Errorf("%s is not set; it says which end dials: %s or %s", EnvSide, SideServer, SideClient)
	default:
		return Env{}, fmt.Errorf("%s is %q, not %s or %s", EnvSide, s, SideServer, SideClient)
	}
	env.Addr = getenv(EnvAddr)
	if env.Addr == "" {
		return Env{}, fmt.Errorf("%s is not set; it is the IP:PORT to listen on or to dial", EnvAddr)
	}
	if _, port, err := net.SplitHostPort(env.Addr); err != nil {
		return Env{}, fmt.Errorf("%s %q is not IP:PORT: %w", EnvAddr, env.Addr, err)
	} else if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return Env{}, fmt.Errorf("%s %q has no port number between 1 and 65535", EnvAddr, env.Addr)
	}
	var err error
	if env.Config, err = ParseConfig(getenv(EnvConfig)); err != nil {
		return Env{}, err
	}
	env.Reconnect = getenv(EnvReconnect) == "1"
	return env, nil
}

// Config is HALFOPEN_CONFIG: the spec's keys that are not the harness's,
// with their values as given on the command line. The accessors return a
// default for a missing key and a one-sentence error for a bad value.
type Config map[string]string

// ParseConfig parses HALFOPEN_CONFIG, a JSON object of strings; empty means
// no keys.
func ParseConfig(text string) (Config, error) {
	c := Config{}
	if strings.TrimSpace(text) == "" {
		return c, nil
	}
	if err := json.Unmarshal([]byte(text), &c); err != nil {
		return nil, fmt.Errorf("%s %s is not a JSON object of strings: %w", EnvConfig, clip(text), err)
	}
	if c == nil { // the text was null
		return nil, fmt.Errorf("%s %s is not a JSON object of strings", EnvConfig, clip(text))
	}
	return c, nil
}

// Get is the value of key, or def when it is missing.
func (c Config) Get(key, def string) string {
	if v, ok := c[key]; ok {
		return v
	}
	return def
}

// Duration is the value of key in Go syntax (200ms, 1.5s, 1m30s), or def when
// it is missing; it may not be negative.
func (c Config) Duration(key string, def time.Duration) (time.Duration, error) {
	v, ok := c[key]
	if !ok {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("config key %s=%s is not a Go duration such as 200ms, 1.5s or 1m30s", key, clip(v))
	}
	if d < 0 {
		return 0, fmt.Errorf("config key %s=%s is a negative duration", key, clip(v))
	}
	return d, nil
}

// Int is the value of key as a decimal integer, or def when it is missing.
func (c Config) Int(key string, def int) (int, error) {
	v, ok := c[key]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("config key %s=%s is not a whole number", key, clip(v))
	}
	return n, nil
}

// Bool is the value of key (true or false, as Go's strconv spells them), or
// def when it is missing.
func (c Config) Bool(key string, def bool) (bool, error) {
	v, ok := c[key]
	if !ok {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("config key %s=%s is neither true nor false", key, clip(v))
	}
	return b, nil
}

// clip quotes s for an error message, shortened to keep it one line.
func clip(s string) string {
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return strconv.Quote(s)
}
