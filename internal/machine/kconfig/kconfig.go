// Package kconfig reads the running kernel's build configuration: the one
// place halfopen learns CONFIG_HZ (the tick package tcprules counts its
// forecasts in) and the idle and preemption options `halfopen doctor`
// reports (package machine).
package kconfig

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ProcConfig is the running kernel's configuration as it exports it
// (CONFIG_IKCONFIG_PROC), gzip-compressed.
const ProcConfig = "/proc/config.gz"

// Config is a kernel configuration: each CONFIG_ option set, to its value
// ("y", "m", a number or a quoted string). Options not set are absent.
type Config map[string]string

// Parse reads a configuration's text (the .config format: NAME=value
// lines, comments and "# NAME is not set" lines ignored).
func Parse(text string) Config {
	c := Config{}
	for _, line := range strings.Split(text, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && strings.HasPrefix(k, "CONFIG_") {
			c[k] = v
		}
	}
	return c
}

// HZ is CONFIG_HZ, the tick rate (jiffies per second), or 0 when the
// configuration does not set it to a positive number.
func (c Config) HZ() int {
	hz, err := strconv.Atoi(c["CONFIG_HZ"])
	if err != nil || hz <= 0 {
		return 0
	}
	return hz
}

// Read reads the running kernel's configuration from ProcConfig, else
// from /boot/config-RELEASE (RELEASE from uname), and says which file it
// read. The error names every place tried and why each failed, on one
// line.
func Read() (Config, string, error) {
	paths := []string{ProcConfig}
	var u unix.Utsname
	if err := unix.Uname(&u); err == nil {
		paths = append(paths, "/boot/config-"+unix.ByteSliceToString(u.Release[:]))
	}
	return readFirst(paths)
}

// readFirst reads the first of paths that holds a configuration; a path
// ending in .gz is gzip-compressed.
func readFirst(paths []string) (Config, string, error) {
	var errs error
	for _, p := range paths {
		text, err := readText(p)
		if err == nil {
			return Parse(text), p, nil
		}
		if errs == nil {
			errs = err
		} else {
			errs = fmt.Errorf("%w; %w", errs, err)
		}
	}
	if errs == nil {
		errs = errors.New("no place to read it from")
	}
	return nil, "", errs
}

func readText(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		z, err := gzip.NewReader(f)
		if err != nil {
			return "", fmt.Errorf("%s: %w", path, err)
		}
		r = z
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return string(b), nil
}
