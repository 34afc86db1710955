// The scale suite: the reference text's passive server, holding N = 100,
// 1 000 and 10 000 idle connections from one client host that then dies
// (host-crash, blackhole), per detector family and per server design:
//
//	[peer: N clients ]==veth==[ router ]==veth==[ watcher: one server ]
//	 dial paced over 1 s,      forward-hook      goroutine per connection,
//	 echo every byte           counters; the     or one epoll loop
//	                           fault
//
// Each (family, design, N, fault) gets a fresh lab. Measured: the time from
// the fault's injection until the server has freed (closed) each
// connection, p50/p99/max; the server's RSS before and holding the N
// connections; its CPU time and the packets the router forwarded over a
// healthy idle window. Asserted, from the kernel's rules: keepalive and
// the user timeout are per-socket kernel timers, so their p99 at 10 000
// stays within 10 % + 50 ms of their p99 at 100; a user-space heart-beat's
// CPU and packets grow with N; read-eof and tcp-info never free a silent
// client's connection.
package scale_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gmeasure"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/internal/version"
	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/report"
	"github.com/halfopen/halfopen/suites"
	"github.com/halfopen/halfopen/suites/scale"
)

// period is every family's timer period (keepalive idle and interval, the
// user timeout's write, the heart-beat, the TCP_INFO poll): the client
// dials over whole periods, so every connection has its own phase.
const period = time.Second

// family is a detector family as the suite runs it, its timers at period.
type family struct {
	name string
	spec string
	// kernelTimer: the server only sets socket options and the kernel's
	// per-socket timers decide (the flatness assertion applies).
	kernelTimer bool
	// userTimer: the server's own timers ping (the cost-grows assertion).
	userTimer bool
	// alsoReasons are reasons the rule's own can turn into. user-timeout's
	// watcher reads and writes on two goroutines: when the timer gives up,
	// tcp_write_err() sets sk_err to ETIMEDOUT once, the first call to
	// look takes it (sock_error() clears it), and a write that comes
	// second finds the socket shut and fails with EPIPE
	// (tcp_sendmsg_locked(), sk_stream_error()); if its goroutine reports
	// first, the reason is EPIPE. Seen here for 1 connection of 1 000 in
	// one run of a dozen.
	alsoReasons []string
}

var (
	families = []family{
		{name: "read-eof", spec: "read-eof"},
		{name: "keepalive-tuned", spec: "keepalive-tuned:idle=1s,intvl=1s,cnt=3", kernelTimer: true},
		{name: "user-timeout", spec: "user-timeout:timeout=2s,every=1s", kernelTimer: true, alsoReasons: []string{"EPIPE"}},
		{name: "heartbeat-inband", spec: "heartbeat-inband:interval=1s,misses=3", userTimer: true},
		{name: "tcp-info", spec: "tcp-info:every=1s"},
	}
	designs    = []scale.Design{scale.DesignGoroutine, scale.DesignEpoll}
	sizes      = []int{100, 1000, 10000}
	faultSpecs = []string{"host-crash", "blackhole"}
)

// labsOf lists a family and design's labs in the order the connection
// budget runs them best: the host-crash labs (which also observe the
// healthy window) from the largest, then the blackhole ones from the
// smallest, so that the two labs of 10 000 never overlap.
func labsOf(f family, d scale.Design) []labSpec {
	var out []labSpec
	for i := len(sizes) - 1; i >= 0; i-- {
		out = append(out, labSpec{Detector: f.spec, Design: d, Conns: sizes[i], Fault: faultSpecs[0], Overhead: true})
	}
	for _, n := range sizes {
		out = append(out, labSpec{Detector: f.spec, Design: d, Conns: n, Fault: faultSpecs[1]})
	}
	return out
}

// connsAtOnce bounds the connections of the labs running at once:
// $HALFOPEN_SCALE_CONNS_AT_ONCE, or one lab of each size.
func connsAtOnce() int {
	if n, err := strconv.Atoi(os.Getenv("HALFOPEN_SCALE_CONNS_AT_ONCE")); err == nil && n >= sizes[len(sizes)-1] {
		return n
	}
	sum := 0
	for _, n := range sizes {
		sum += n
	}
	return sum + sizes[0]
}

var _ = Describe("a passive server holding many idle connections whose client host dies", Ordered, ContinueOnFailure, Label("scale", "netns", "measurement"), func() {
	var (
		run  *harness.Run
		w    *report.Writer
		dir  string
		pool *connBudget
		exp  *gmeasure.Experiment
		// mine holds the (family, design) entries of this CI shard.
		mine map[string]bool
	)

	BeforeAll(func() {
		suites.RequireLab()
		mine = myEntries(os.Getenv("HALFOPEN_SHARD"))
		run = harness.NewRun()
		DeferCleanup(func(context.Context) error { return run.Close() }, NodeTimeout(60*time.Second))
		dir = GinkgoT().TempDir()
		pool = newConnBudget(connsAtOnce())
		path := suites.ReportPath("scale")
		env := version.Environment()
		env.CPUs = runtime.NumCPU()
		var err error
		w, err = report.Create(path, &report.Report{
			Schema: report.SchemaV1, Profile: profile(), Started: time.Now().UTC(), Seed: 42, Shard: os.Getenv("HALFOPEN_SHARD"),
			Environment: env,
		})
		Expect(err).NotTo(HaveOccurred())
		exp = gmeasure.NewExperiment("scale")
		AddReportEntry(exp.Name, exp)
		DeferCleanup(func() {
			Expect(w.Close()).To(Succeed())
			_, err := report.Read(path)
			Expect(err).NotTo(HaveOccurred(), "the suite's own report does not pass the reader")
			GinkgoWriter.Printf("report: %s\n", path)
		})
	})

	var entries []TableEntry
	for _, f := range families {
		for _, d := range designs {
			entries = append(entries, Entry(fmt.Sprintf("%s, %s design", f.name, d), f, d, Label(f.name, string(d)), SpecTimeout(5*time.Minute)))
		}
	}

	DescribeTable("frees each connection as the detector's rule says, at every N",
		func(ctx SpecContext, f family, d scale.Design) {
			if !mine[entryKey(f, d)] {
				Skip(fmt.Sprintf("%s, %s design belongs to another shard than %s", f.name, d, os.Getenv("HALFOPEN_SHARD")))
			}
			specs := labsOf(f, d)
			results, errs := measureLabs(ctx, run, specs, pool, dir)
			for i, r := range results {
				if errs[i] != nil {
					continue
				}
				cell := scaleCell(r)
				Expect(w.Update(func(rep *report.Report) { rep.Cells = append(rep.Cells, cell) })).To(Succeed())
				GinkgoWriter.Println(summary(r))
				if r.freeS != nil {
					exp.RecordValue("p99 free "+string(d), quantile(r.freeS, 0.99), gmeasure.Units("s"), gmeasure.Annotation(r.spec.String()))
				}
			}
			for i, err := range errs {
				Expect(err).NotTo(HaveOccurred(), "lab %s", specs[i])
			}
			byLab := map[string]labResult{}
			for _, r := range results {
				byLab[fmt.Sprintf("%s/%d", r.spec.Fault, r.spec.Conns)] = r
				Expect(r.accepted).To(Equal(r.spec.Conns), "%s: the server accepted %d of %d connections", r.spec, r.accepted, r.spec.Conns)
				Expect(r.early).To(BeZero(), "%s: %d connections freed while the client was alive", r.spec, r.early)
				expectRule(f, r)
			}
			for _, flt := range faultSpecs {
				small, large := byLab[fmt.Sprintf("%s/%d", flt, sizes[0])], byLab[fmt.Sprintf("%s/%d", flt, sizes[len(sizes)-1])]
				if f.kernelTimer {
					expectFlat(small, large)
				}
			}
			if f.userTimer {
				expectCostGrows(byLab[fmt.Sprintf("%s/%d", faultSpecs[0], sizes[0])], byLab[fmt.Sprintf("%s/%d", faultSpecs[0], sizes[len(sizes)-1])])
			}
		},
		entries,
	)
})

func entryKey(f family, d scale.Design) string { return f.spec + "/" + string(d) }

// myEntries returns the (family, design) entries of CI shard spec ("i/n",
// every n-th entry, as harness.Shard splits cells; all when spec is
// empty), so that the shards of a CI matrix measure each lab once.
func myEntries(spec string) map[string]bool {
	var configs []harness.CellConfig
	for _, f := range families {
		for _, d := range designs {
			configs = append(configs, harness.CellConfig{Detector: f.spec, Fault: string(d)})
		}
	}
	kept, err := harness.Shard(configs, spec)
	Expect(err).NotTo(HaveOccurred())
	out := map[string]bool{}
	for _, c := range kept {
		out[c.Detector+"/"+c.Fault] = true
	}
	return out
}

func profile() string {
	if p := os.Getenv("PROFILE"); p != "" {
		return p
	}
	return "quick"
}

// expectRule asserts what the detector's rule says of a silent client:
// never (every connection still held at the budget: censored), or every
// connection freed for a reason the rule allows, the p99 inside the
// predicted range widened by report.PredictionTolerance. The rule assumes a server
// that wakes when its timer says: a kernel timer's does at every N, and a
// user-space heart-beat's at the smallest N; above it the heart-beat's
// lateness is what the suite reports, and only a slip by a whole interval
// fails.
func expectRule(f family, r labResult) {
	GinkgoHelper()
	p := r.prediction
	if p.Never {
		Expect(r.freeS).To(BeEmpty(), "%s: theory says a silent client is never noticed (%s), yet %d connections were freed, the first after %.3f s",
			r.spec, p.Rule, len(r.freeS), first(r.freeS))
		return
	}
	Expect(r.freeS).To(HaveLen(r.spec.Conns), "%s: %d of %d connections freed within %v", r.spec, len(r.freeS), r.spec.Conns, budget)
	allowed := append(slices.Clone(p.Reasons), f.alsoReasons...)
	for reason := range r.reasons {
		Expect(allowed).To(ContainElement(reason), "%s: freed for %q, the rule allows %v", r.spec, reason, allowed)
	}
	hi := p.Hi + report.PredictionTolerance
	if f.userTimer && r.spec.Conns > sizes[0] {
		hi += period
	}
	p99 := time.Duration(quantile(r.freeS, 0.99) * float64(time.Second))
	Expect(p99).To(And(BeNumerically(">=", p.Lo-report.PredictionTolerance), BeNumerically("<=", hi)),
		"%s: p99 %v outside the predicted [%v, %v] (%s), here [%v, %v]", r.spec, p99, p.Lo, p.Hi, p.Rule, p.Lo-report.PredictionTolerance, hi)
}

// expectFlat asserts that a kernel per-socket timer does not slow down with
// N: p99 at the largest N within 10 % + 50 ms of p99 at the smallest.
func expectFlat(small, large labResult) {
	GinkgoHelper()
	if len(small.freeS) == 0 || len(large.freeS) == 0 {
		Fail(fmt.Sprintf("%s or %s freed nothing, so flatness cannot be judged", small.spec, large.spec))
	}
	for _, r := range []labResult{small, large} {
		Expect(r.acceptGap).To(BeNumerically("<=", maxAcceptGap),
			"%s: %v of the timer period held no connection's phase (after %d attempts): the server stalled while accepting, the phases bunched, and p99 says where the fault fell, not how the timers scale", r.spec, r.acceptGap, attempts)
	}
	a, b := quantile(small.freeS, 0.99), quantile(large.freeS, 0.99)
	Expect(b).To(BeNumerically("~", a, 0.10*a+0.050),
		"%s: p99 %.3f s at %d connections against %.3f s at %d: a per-socket kernel timer should not care how many sockets there are",
		large.spec, b, large.spec.Conns, a, small.spec.Conns)
}

// expectCostGrows asserts that a user-space heart-beat's cost grows with
// N: its packets in the healthy window grow with N (at least half as fast:
// one ping and one pong per connection and interval), and so does the
// server's CPU time, if more slowly (at least 3× for 100× the
// connections), since at large N one wake-up serves many timers.
func expectCostGrows(small, large labResult) {
	GinkgoHelper()
	growth := float64(large.spec.Conns) / float64(small.spec.Conns)
	Expect(float64(large.packets)).To(BeNumerically(">=", float64(small.packets)*growth/2),
		"%s: %d packets at %d connections against %d at %d", large.spec, large.packets, large.spec.Conns, small.packets, small.spec.Conns)
	Expect(float64(large.cpu)).To(BeNumerically(">=", 3*float64(small.cpu)),
		"%s: CPU %v at %d connections against %v at %d", large.spec, large.cpu, large.spec.Conns, small.cpu, small.spec.Conns)
}

// quantile is report.NearestRank over sorted seconds.
func quantile(sorted []float64, q float64) float64 { return report.NearestRank(sorted, q) }

func first(s []float64) float64 {
	if len(s) == 0 {
		return 0
	}
	return s[0]
}

func (r labResult) perConnMin(v float64) float64 {
	if r.windowDur <= 0 {
		return 0
	}
	return v / float64(r.spec.Conns) / r.windowDur.Minutes()
}

// summary is one line per lab for the suite's output.
func summary(r labResult) string {
	free := "none freed (censored)"
	if len(r.freeS) > 0 {
		free = fmt.Sprintf("freed %d: p50 %.3f s p99 %.3f s max %.3f s", len(r.freeS), quantile(r.freeS, 0.5), quantile(r.freeS, 0.99), r.freeS[len(r.freeS)-1])
	}
	s := fmt.Sprintf("%s: %s; RSS %.1f MiB (%.0f B/conn), %d threads, established in %v (widest phase gap %v)",
		r.spec, free, float64(r.rss)/(1<<20), perConn(r), r.threads, r.establish.Round(time.Millisecond), r.acceptGap.Round(100*time.Microsecond))
	if r.windowDur > 0 {
		s += fmt.Sprintf("; healthy: %.1f packets/conn-min, CPU %.1f µs/conn-min (%.1f ms in %v)", r.perConnMin(float64(r.packets)), r.perConnMin(float64(r.cpu))/1e3, float64(r.cpu)/1e6, r.windowDur.Round(time.Millisecond))
	}
	return s
}

// perConn is the server's resident memory per connection, as the report
// derives it.
func perConn(r labResult) float64 {
	return (&report.Scale{Conns: r.spec.Conns, BaseRSSBytes: r.baseRSS, RSSBytes: r.rss}).RSSPerConn()
}

// scaleCell turns a lab's result into its report cell, with how each number
// was measured in the note.
func scaleCell(r labResult) report.Cell {
	det, _ := harness.CanonicalDetector(r.spec.Detector)
	flt, _ := harness.CanonicalFault(r.spec.Fault)
	sc := &report.Scale{
		Design: string(r.spec.Design), Conns: r.spec.Conns, Freed: len(r.freeS), Reasons: r.reasons,
		EstablishS: r.establish.Seconds(), BaseRSSBytes: r.baseRSS, RSSBytes: r.rss, Threads: r.threads,
	}
	if n := len(r.freeS); n > 0 {
		sc.FreeMs = &report.Quantiles{P50: 1000 * quantile(r.freeS, 0.5), P99: 1000 * quantile(r.freeS, 0.99), Max: 1000 * r.freeS[n-1], N: n}
	}
	c := report.Cell{
		Detector: det, Fault: flt, Side: string(protocol.SideServer), Kind: report.KindScale, Path: "direct",
		BudgetS: budget.Seconds(), PredictedS: r.prediction.Seconds(), PredictedRule: r.prediction.Rule,
		Expect: "detect", Reasons: r.prediction.Reasons, Samples: []report.Sample{}, Scale: sc, Sysctls: r.sysctls,
	}
	if r.prediction.Never {
		c.Expect = "never"
	}
	notes := []string{
		fmt.Sprintf("%s server holding %d idle connections from one client host, which dialed them paced evenly over %v after a probe of the path (each connection's timers at its own phase: accept instants modulo the %v period left no stretch wider than %v without one), with RLIMIT_NOFILE raised to N+1024 in both processes, both at normal priority.",
			designText(r.spec.Design), r.spec.Conns, r.spread, period, r.acceptGap.Round(100*time.Microsecond)),
		"Free time: CLOCK_MONOTONIC from the fault's injection (the kernel's acknowledgement of the router's drop rules) until the server's close() of the connection returned, stamped in the server; p50/p99/max nearest-rank over the freed connections.",
	}
	if sc.FreeMs != nil && !r.prediction.Never {
		if late := time.Duration(sc.FreeMs.P99*float64(time.Millisecond)) - r.prediction.Hi; late > 0 {
			notes = append(notes, fmt.Sprintf("p99 is %v past the rule's upper bound %v: the server freed late.", late.Round(time.Millisecond), r.prediction.Hi))
		}
	}
	if len(r.bunched) > 0 {
		notes = append(notes, fmt.Sprintf("Measured again %d time(s): earlier attempts left stretches of %v of the period without a connection's phase (more than %v): the server had stalled and the phases bunched.", len(r.bunched), r.bunched, maxAcceptGap))
	}
	if r.prediction.Never {
		notes = append(notes, fmt.Sprintf("Censored: %d of %d connections still held %v after the fault, as theory says (%s).", r.spec.Conns-len(r.freeS), r.spec.Conns, budget, r.prediction.Rule))
	}
	notes = append(notes, fmt.Sprintf("Memory: VmRSS of the server from /proc/PID/status, %.1f MiB before the first connection and %.1f MiB holding all %d (%.0f bytes per connection, user space only: the kernel's socket memory is not in RSS%s).",
		float64(r.baseRSS)/(1<<20), float64(r.rss)/(1<<20), r.spec.Conns, perConn(r), kernelSocketText()))
	if r.windowDur > 0 {
		c.Overhead = &report.Overhead{
			PacketsPerConnMin: r.perConnMin(float64(r.packets)), BytesPerConnMin: r.perConnMin(float64(r.bytes)),
			WatcherCPUPercent: 100 * r.cpu.Seconds() / r.windowDur.Seconds(), WindowS: r.windowDur.Seconds(),
		}
		notes = append(notes, fmt.Sprintf("Healthy cost over %.2f s of idle, %v after the last connection: packets and bytes the router forwarded between the hosts (nftables counters on its forward hook), %d packets, %.1f per connection-minute; server CPU time summed over its threads' /proc/PID/task/*/schedstat, %.1f ms, %.1f µs per connection-minute.",
			r.windowDur.Seconds(), settle, r.packets, r.perConnMin(float64(r.packets)), float64(r.cpu)/1e6, r.perConnMin(float64(r.cpu))/1e3))
	} else {
		notes = append(notes, "Healthy cost: measured in the host-crash lab of the same detector, design and N.")
	}
	c.Note = strings.Join(notes, " ")
	return c
}

// kernelSocketText names the kernel's own size of a TCP socket, from
// /proc/slabinfo's TCP cache, when it can be read.
func kernelSocketText() string {
	b, err := os.ReadFile("/proc/slabinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 3 && f[0] == "TCP" {
			return fmt.Sprintf("; the kernel's struct tcp_sock alone is %s bytes a socket, its slab TCP's object size", f[3])
		}
	}
	return ""
}

func designText(d scale.Design) string {
	if d == scale.DesignEpoll {
		return "One epoll loop on one OS thread (keepalive and the user timeout as socket options, application timers in one heap)"
	}
	return "One goroutine per connection running halfopen's detector (the reference text's thread per connection)"
}
