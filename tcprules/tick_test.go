package tcprules

import (
	"bufio"
	"compress/gzip"
	"errors"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/halfopen/halfopen/internal/machine/kconfig"
)

// The ticks the tests state: the lab kernel's (KERNEL-RULES.md's worked
// table is for it), and two others whose jiffies change the rules'
// outcome.
var (
	hz250  = Tick{HZ: 250}
	hz1000 = Tick{HZ: 1000}
	hz100  = Tick{HZ: 100}
)

// TestHZ checks that the tick the rules use is the running kernel's
// CONFIG_HZ, read here on its own from /proc/config.gz or
// /boot/config-RELEASE; where neither is readable, that the rules say
// they assumed DefaultHZ.
func TestHZ(t *testing.T) {
	got := KernelTick()
	hz, source, err := configHZ()
	if err != nil {
		if !got.Assumed || got.HZ != DefaultHZ {
			t.Errorf("no kernel configuration readable here (%v), yet the rules use %+v, not an assumed %d", err, got, DefaultHZ)
		}
		return
	}
	if got.HZ != hz || got.Assumed || got.Source != source {
		t.Errorf("the rules use %+v; %s says CONFIG_HZ=%d", got, source, hz)
	}
	if got.Jiffy() != time.Second/time.Duration(hz) {
		t.Errorf("jiffy %v at HZ %d", got.Jiffy(), hz)
	}
}

// configHZ reads CONFIG_HZ without package kconfig.
func configHZ() (int, string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return 0, "", err
	}
	var errs []error
	for _, path := range []string{"/proc/config.gz", "/boot/config-" + unix.ByteSliceToString(u.Release[:])} {
		f, err := os.Open(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		defer f.Close()
		var r io.Reader = f
		if strings.HasSuffix(path, ".gz") {
			if r, err = gzip.NewReader(f); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "CONFIG_HZ="); ok {
				hz, err := strconv.Atoi(v)
				return hz, path, err
			}
		}
		errs = append(errs, errors.New(path+" sets no CONFIG_HZ"))
	}
	return 0, "", errors.Join(errs...)
}

// TestTickOf: the tick a configuration gives, and the assumption where
// none says.
func TestTickOf(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    string
		err    error
		want   Tick
		prints string
	}{
		{"HZ 250", "CONFIG_HZ_250=y\nCONFIG_HZ=250\n", nil, Tick{HZ: 250, Source: "/proc/config.gz"}, "250 Hz (4 ms jiffies), read from /proc/config.gz"},
		{"HZ 1000", "CONFIG_HZ=1000\n", nil, Tick{HZ: 1000, Source: "/proc/config.gz"}, "1000 Hz (1 ms jiffies), read from"},
		{"HZ 300", "CONFIG_HZ=300\n", nil, Tick{HZ: 300, Source: "/proc/config.gz"}, "300 Hz (3.333 ms jiffies)"},
		{"no CONFIG_HZ", "# CONFIG_HZ is not set\n", nil, Tick{HZ: DefaultHZ, Source: "/proc/config.gz sets no CONFIG_HZ", Assumed: true}, "250 Hz (4 ms jiffies), assumed: /proc/config.gz sets no CONFIG_HZ"},
		{"unreadable", "", errors.New("open /proc/config.gz: no such file or directory"), Tick{HZ: DefaultHZ, Source: "no kernel configuration readable (open /proc/config.gz: no such file or directory)", Assumed: true}, "assumed: no kernel configuration readable"},
	} {
		var cfg kconfig.Config
		src := ""
		if tc.err == nil {
			cfg, src = kconfig.Parse(tc.cfg), "/proc/config.gz"
		}
		got := tickOf(cfg, src, tc.err)
		if got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
		if !strings.Contains(got.String(), tc.prints) {
			t.Errorf("%s: %q lacks %q", tc.name, got, tc.prints)
		}
	}
}

// TestJiffyArithmetic: conversions at a tick that divides a second and
// at one that does not, and at an uptime whose nanoseconds times HZ
// overflow int64.
func TestJiffyArithmetic(t *testing.T) {
	hz300 := Tick{HZ: 300}
	ms := time.Millisecond
	for _, tc := range []struct {
		name string
		got  int64
		want int64
	}{
		{"ceil 1 s at 250", hz250.ceil(time.Second), 250},
		{"ceil 1 s + 1 ns at 250", hz250.ceil(time.Second + 1), 251},
		{"ceil 200 ms at 100", hz100.ceil(200 * ms), 20},
		{"ceil 10 ms at 300", hz300.ceil(10 * ms), 3},
		{"ceil 11 ms at 300", hz300.ceil(11 * ms), 4},
		{"ago 48.1 ms at 100", hz100.ago(0.0481), 5},
		{"ago 48.1 ms at 1000", hz1000.ago(0.0481), 48},
		{"ms of 51 j at 250", hz250.ms(51), 204},
		{"ms of 61 j at 300", hz300.ms(61), 203},
		{"wheel jiffy after 300 days at 1000", hz1000.wheelJiffyAt(int64(300*24*time.Hour), 7), 300*24*3600*1000 + 7},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, tc.got, tc.want)
		}
	}
	for _, tc := range []struct {
		tk      Tick
		d       time.Duration
		j       int64
		phase   time.Duration
		jiffies time.Duration // tk.dur(j)
	}{
		{hz250, 10 * ms, 2, 2 * ms, 8 * ms},
		{hz250, -1 * ms, -1, 3 * ms, -4 * ms},
		{hz1000, -1 * ms, -1, 0, -1 * ms},
		{hz300, 10 * ms, 3, 0, 10 * ms},
		{hz300, 3 * ms, 0, 3 * ms, 0},
	} {
		j, phase := tc.tk.floor(tc.d)
		if j != tc.j || phase != tc.phase || tc.tk.dur(j) != tc.jiffies {
			t.Errorf("HZ %d: floor(%v) = %d j + %v (%v), want %d j + %v (%v)", tc.tk.HZ, tc.d, j, phase, tc.tk.dur(j), tc.j, tc.phase, tc.jiffies)
		}
	}
}

// TestRulesAtOtherHZ: where the tick changes a rule's outcome, each tick
// gets the kernel's answer, derived by hand from KERNEL-RULES.md:
//
//   - RTOFast (§2, tcp_set_rto): rttvar's floor of 200 ms plus a fast
//     link's srtt of well under a jiffy, rounded up to jiffies: 51 j at
//     HZ 250, 201 j at 1000, 21 j at 100.
//   - The tail-loss probe and t1 (§2, §4), one small write at the fault:
//     PTO = 2·srtt + rto_min rounded up, capped at R: R j, armed from
//     process context, then the RTO re-armed R j from the probe's
//     callback. At HZ 250 and 100 R < 63 j files both at level 0, each
//     1 j late: the probe at R+1 j, t1 at 2R+2 j (208 and 416 ms at HZ
//     250, 220 and 440 ms at HZ 100). At HZ 1000, R = 201 j files both
//     at level 1 (8 j steps): the probe fires 1 to 8 j late, at 202–209
//     j, on a multiple of 8, so the RTO re-armed from it 201 j ahead
//     fires 208 j on: t1 at 410–417 j. Each minus the 1 j of the fault's
//     place in its tick.
//   - Keepalive 1/1/3 on an idle connection, the last segment L 0.5 s
//     before the fault (§1, §4): the kill is the first probe's firing
//     plus three re-arms of 1 s. 1 s is 250 j (level 1, 8 j steps) at HZ
//     250, 1000 j (level 2, 64 j steps) at 1000, 100 j (level 1, 8 j) at
//     100; an aligned re-arm lasts 256, 1024 and 104 j. The first probe
//     fires 1 j to one step after L + T: the kill comes L + 251+251+2·256
//     to 258+3·256 j (4.056–4.104 s, the worked table's), L + 4.050–4.136
//     s at 1000, L + 4.10–4.20 s at 100; minus 0.5 s and, below, 1 j.
//   - Clock (§5): an event dated by a tcpi_last_* value, ± 1 j.
//   - NextTick: tcpi_last_data_sent in whole jiffies: 48.1 ms is 12 j
//     (48 ms) at HZ 250, 48 j at 1000, 5 j (50 ms) at 100.
//   - RetransmitRange(2, RTOFast): Lo = R + 2R + 4R + 8R ... the first
//     doubling sum reaching B(2) = 1.4 s with late timers, R + 14R;
//     Hi adds rto_min, each interval's wheel step and one firing more
//     (16R and its step): 3.06–6.88 s at HZ 250, 3.015–6.639 s at 1000
//     (8 j and 64 j steps), 3.15–6.97 s at 100 (10 ms and 80 ms steps).
func TestRulesAtOtherHZ(t *testing.T) {
	ms := time.Millisecond
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-6 }
	for _, tc := range []struct {
		tk Tick
		// rtoFast and the first RTO resend of a silence of 1 s after it.
		rtoFast, resend time.Duration
		// The tail-loss probe's and t1's windows after the fault.
		tlpLo, tlpHi, t1Lo, t1Hi float64
		// Keepalive 1/1/3, idle 0.5 s at the fault.
		kaLo, kaHi float64
		// Clock's width, NextTick(0.0481, 200 ms).
		clockWidth float64
		next       time.Duration
		// RetransmitRange(2, RTOFast).
		rangeLo, rangeHi time.Duration
	}{
		{hz250, 204 * ms, 1428 * ms, 0.204, 0.208, 0.412, 0.416, 3.552, 3.604, 0.008, 152 * ms, 3060 * ms, 6880 * ms},
		{hz1000, 201 * ms, 1407 * ms, 0.201, 0.209, 0.409, 0.417, 3.549, 3.636, 0.002, 152 * ms, 3015 * ms, 6639 * ms},
		{hz100, 210 * ms, 1470 * ms, 0.21, 0.22, 0.43, 0.44, 3.59, 3.70, 0.02, 150 * ms, 3150 * ms, 6970 * ms},
	} {
		t.Run(strconv.Itoa(tc.tk.HZ)+" Hz", func(t *testing.T) {
			if got := tc.tk.rtoFast(); got != tc.rtoFast {
				t.Errorf("RTOFast %v, want %v", got, tc.rtoFast)
			}
			if got := ResendAfter(time.Second, tc.tk.rtoFast()); got != tc.resend {
				t.Errorf("resend after 1 s of silence %v, want %v", got, tc.resend)
			}
			// One small segment sent at the fault; tcpi_rto reads R.
			st := sentAgo(0)
			st.RTOS = tc.rtoFast.Seconds()
			tlp := tc.tk.writerResetAfter(st, 0, 15, 0, 0, 0)
			t1 := tc.tk.writerResetAfter(st, 0, 15, 0, 0, 300*ms)
			for _, w := range []struct {
				what   string
				f      Forecast
				lo, hi float64
			}{
				{"tail-loss probe", tlp, tc.tlpLo, tc.tlpHi},
				{"first RTO resend", t1, tc.t1Lo, tc.t1Hi},
				{"keepalive 1/1/3", tc.tk.keepalive(idleFor(0.5), time.Second, time.Second, 3, 0), tc.kaLo, tc.kaHi},
			} {
				if w.f.Never || !near(w.f.LoS, w.lo) || !near(w.f.HiS, w.hi) {
					t.Errorf("%s: [%.4f, %.4f], want [%.3f, %.3f] (%s)", w.what, w.f.LoS, w.f.HiS, w.lo, w.hi, w.f.Rule)
				}
			}
			if f := tc.tk.clock(0.1, 600*ms, "heart-beat"); !near(f.AtS, 0.5) || !near(f.HiS-f.LoS, tc.clockWidth) {
				t.Errorf("clock: %+v, want at 0.5 s ± %.3f", f, tc.clockWidth/2)
			}
			if got := tc.tk.nextTick(0.0481, 200*ms); got != tc.next {
				t.Errorf("next tick %v, want %v", got, tc.next)
			}
			if r := tc.tk.retransmitRange(2, tc.tk.rtoFast()); r.Lo != tc.rangeLo || r.Hi != tc.rangeHi {
				t.Errorf("RetransmitRange(2): [%v, %v], want [%v, %v]", r.Lo, r.Hi, tc.rangeLo, tc.rangeHi)
			}
		})
	}
}
