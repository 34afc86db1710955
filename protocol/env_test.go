package protocol

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"
)

func TestReadEnv(t *testing.T) {
	good := map[string]string{
		EnvProtocol: "1", EnvRole: "watcher", EnvSide: "client", EnvAddr: "198.18.0.2:7000",
		EnvConfig: `{"idle":"1s"}`,
	}
	with := func(k, v string) map[string]string {
		m := maps.Clone(good)
		m[k] = v
		return m
	}
	tests := []struct {
		name    string
		env     map[string]string
		want    Env
		wantErr string
	}{
		{"complete", good, Env{Role: RoleWatcher, Side: SideClient, Addr: "198.18.0.2:7000", Config: Config{"idle": "1s"}}, ""},
		{"role defaults to watcher", with(EnvRole, ""), Env{Role: RoleWatcher, Side: SideClient, Addr: "198.18.0.2:7000", Config: Config{"idle": "1s"}}, ""},
		{"peer, reconnect, no config", func() map[string]string {
			m := with(EnvRole, "peer")
			m[EnvReconnect], m[EnvConfig], m[EnvAddr] = "1", "", "[::1]:80"
			return m
		}(), Env{Role: RolePeer, Side: SideClient, Addr: "[::1]:80", Config: Config{}, Reconnect: true}, ""},
		{"reconnect only when 1", with(EnvReconnect, "true"), Env{Role: RoleWatcher, Side: SideClient, Addr: "198.18.0.2:7000", Config: Config{"idle": "1s"}}, ""},
		{"no protocol", with(EnvProtocol, ""), Env{}, "HALFOPEN_PROTOCOL is not set"},
		{"protocol 2", with(EnvProtocol, "2"), Env{}, `HALFOPEN_PROTOCOL is "2", but this program speaks protocol 1`},
		{"bad role", with(EnvRole, "observer"), Env{}, `HALFOPEN_ROLE is "observer", not watcher or peer`},
		{"no side", with(EnvSide, ""), Env{}, "HALFOPEN_SIDE is not set"},
		{"bad side", with(EnvSide, "both"), Env{}, `HALFOPEN_SIDE is "both", not server or client`},
		{"no addr", with(EnvAddr, ""), Env{}, "HALFOPEN_ADDR is not set"},
		{"addr without port", with(EnvAddr, "198.18.0.2"), Env{}, `HALFOPEN_ADDR "198.18.0.2" is not IP:PORT`},
		{"port 0", with(EnvAddr, "198.18.0.2:0"), Env{}, "has no port number between 1 and 65535"},
		{"port too big", with(EnvAddr, "198.18.0.2:70000"), Env{}, "has no port number between 1 and 65535"},
		{"config not JSON", with(EnvConfig, "idle=1s"), Env{}, `HALFOPEN_CONFIG "idle=1s" is not a JSON object of strings`},
		{"config not strings", with(EnvConfig, `{"cnt":3}`), Env{}, "is not a JSON object of strings"},
		{"config null", with(EnvConfig, "null"), Env{}, "is not a JSON object of strings"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Role != tt.want.Role || got.Side != tt.want.Side || got.Addr != tt.want.Addr ||
				got.Reconnect != tt.want.Reconnect || !maps.Equal(got.Config, tt.want.Config) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestListens(t *testing.T) {
	tests := []struct {
		role Role
		side Side
		want bool
	}{
		{RoleWatcher, SideServer, true},
		{RoleWatcher, SideClient, false},
		{RolePeer, SideServer, false},
		{RolePeer, SideClient, true},
	}
	for _, tt := range tests {
		if got := (Env{Role: tt.role, Side: tt.side}).Listens(); got != tt.want {
			t.Errorf("%s on side %s: Listens() = %t, want %t", tt.role, tt.side, got, tt.want)
		}
	}
}

func TestConfigAccessors(t *testing.T) {
	c := Config{"idle": "1.5s", "neg": "-1s", "bad": "1 s", "cnt": "3", "frac": "3.5", "on": "true", "maybe": "perhaps"}
	tests := []struct {
		name    string
		get     func() (any, error)
		want    any
		wantErr string
	}{
		{"duration", func() (any, error) { return c.Duration("idle", time.Second) }, 1500 * time.Millisecond, ""},
		{"duration default", func() (any, error) { return c.Duration("intvl", 2*time.Second) }, 2 * time.Second, ""},
		{"duration bad", func() (any, error) { return c.Duration("bad", 0) }, nil, `config key bad="1 s" is not a Go duration such as 200ms, 1.5s or 1m30s`},
		{"duration negative", func() (any, error) { return c.Duration("neg", 0) }, nil, `config key neg="-1s" is a negative duration`},
		{"int", func() (any, error) { return c.Int("cnt", 9) }, 3, ""},
		{"int default", func() (any, error) { return c.Int("missing", 9) }, 9, ""},
		{"int bad", func() (any, error) { return c.Int("frac", 9) }, nil, `config key frac="3.5" is not a whole number`},
		{"bool", func() (any, error) { return c.Bool("on", false) }, true, ""},
		{"bool default", func() (any, error) { return c.Bool("off", true) }, true, ""},
		{"bool bad", func() (any, error) { return c.Bool("maybe", false) }, nil, `config key maybe="perhaps" is neither true nor false`},
		{"get", func() (any, error) { return c.Get("cnt", "x"), nil }, "3", ""},
		{"get default", func() (any, error) { return c.Get("missing", "x"), nil }, "x", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.get()
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// FuzzParseConfig: any text either parses into a config that survives a
// round trip through JSON, or is refused with a one-line error naming
// HALFOPEN_CONFIG; the accessors never panic.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{"", "{}", `{"idle":"1s","cnt":"3"}`, `{"a":1}`, "null", `{"a":"\u00e9"}`, `[1]`, `{"x":"1h2m3.5s"}`, "{\"a\":\"\n\"}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		c, err := ParseConfig(text)
		if err != nil {
			if c != nil || !strings.HasPrefix(err.Error(), EnvConfig+" ") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("ParseConfig(%q) = %v, %q: want nil and one line naming %s", text, c, err, EnvConfig)
			}
			return
		}
		if c == nil {
			t.Fatalf("ParseConfig(%q) = nil config and no error", text)
		}
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseConfig(string(b))
		if err != nil || !maps.Equal(c, again) {
			t.Fatalf("round trip of %q: %v, %v", text, again, err)
		}
		for k := range c {
			for _, get := range []func() error{
				func() error { _, err := c.Duration(k, 0); return err },
				func() error { _, err := c.Int(k, 0); return err },
				func() error { _, err := c.Bool(k, false); return err },
			} {
				if err := get(); err != nil && strings.Contains(err.Error(), "\n") {
					t.Fatalf("key %q: error %q is not one line", k, err)
				}
			}
		}
	})
}
