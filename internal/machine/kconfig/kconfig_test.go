package kconfig

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseHZ(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		hz         int
	}{
		{"this VM", "CONFIG_NO_HZ_IDLE=y\n# CONFIG_HZ_1000 is not set\nCONFIG_HZ_250=y\nCONFIG_HZ=250\n", 250},
		{"a desktop", "CONFIG_HZ_1000=y\nCONFIG_HZ=1000\n", 1000},
		{"a server", "  CONFIG_HZ=100\r\n", 100},
		{"not set", "# CONFIG_HZ is not set\n", 0},
		{"not a number", "CONFIG_HZ=\"fast\"\n", 0},
		{"zero", "CONFIG_HZ=0\n", 0},
	} {
		if got := Parse(tc.text).HZ(); got != tc.hz {
			t.Errorf("%s: HZ %d, want %d", tc.name, got, tc.hz)
		}
	}
}

// readFirst takes the first file that reads, gzip-compressed or not, and
// names every place it tried when none does.
func TestReadFirst(t *testing.T) {
	dir := t.TempDir()
	var gz bytes.Buffer
	z := gzip.NewWriter(&gz)
	if _, err := z.Write([]byte("CONFIG_HZ=1000\n")); err != nil {
		t.Fatal(err)
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"config.gz":      gz.String(),
		"config-plain":   "CONFIG_HZ=100\n",
		"broken.gz":      "not gzip",
		"config-missing": "",
	}
	for name, text := range files {
		if name == "config-missing" {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	at := func(names ...string) []string {
		var out []string
		for _, n := range names {
			out = append(out, filepath.Join(dir, n))
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		paths  []string
		hz     int
		source string // "" when none reads
	}{
		{"the proc file", at("config.gz", "config-plain"), 1000, "config.gz"},
		{"boot's when proc's is missing", at("config-missing", "config-plain"), 100, "config-plain"},
		{"boot's when proc's is broken", at("broken.gz", "config-plain"), 100, "config-plain"},
		{"none", at("config-missing", "broken.gz"), 0, ""},
	} {
		c, src, err := readFirst(tc.paths)
		switch {
		case tc.source == "":
			if err == nil || !strings.Contains(err.Error(), "config-missing") || !strings.Contains(err.Error(), "broken.gz") || strings.Contains(err.Error(), "\n") {
				t.Errorf("%s: error %v, want one line naming both places", tc.name, err)
			}
		case err != nil || filepath.Base(src) != tc.source || c.HZ() != tc.hz:
			t.Errorf("%s: HZ %d from %q (%v), want %d from %s", tc.name, c.HZ(), src, err, tc.hz, tc.source)
		}
	}
}
