package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/internal/version"
	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/report"
	"github.com/halfopen/halfopen/tcprules"
)

type runFlags struct {
	detectors, faults, sides, sysctls []string
	samples, pool                     int
	budget, idle                      time.Duration
	seed                              int64
	reportPath, profile, shard        string
	phases                            []string
	pcap                              bool
}

func newRunCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run --detector SPEC --fault SPEC [flags]",
		Short: "Measure detectors against faults in fresh labs, with a live progress line and a table",
		Long: `Measure detectors against faults in fresh labs, with a live progress line and a table.

Exit codes: 0 every sample was measured (whatever it measured); 2 bad input,
a machine that cannot run the lab, or a sample that could not be measured
(a watcher program that crashed, hung or broke protocol v1: the run goes on,
keeps every sample in its report and ends with one sentence saying how many).`,
		Example: `  halfopen run --detector keepalive-tuned:idle=1s,intvl=1s,cnt=3 --fault blackhole --samples 3
  halfopen run --detector user-timeout:timeout=2s,every=200ms --fault peer-cable-pull --side server
  halfopen run --detector read-eof --detector heartbeat-inband --fault graceful-close --fault host-crash`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := harness.EnterUserNamespace(); err != nil {
				return badInput(err)
			}
			return runMatrix(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&f.detectors, "detector", nil, "detector spec NAME[:key=value,...]; repeat for a matrix")
	fl.StringArrayVar(&f.faults, "fault", nil, "fault spec NAME[:key=value,...]; repeat for a matrix")
	fl.StringArrayVar(&f.sides, "side", []string{"client"}, "client (the watcher dials) or server (the watcher accepts); repeat for both")
	fl.IntVar(&f.samples, "samples", 3, "samples per cell")
	fl.DurationVar(&f.budget, "budget", 0, "how long a sample waits for a decision (default: from the prediction)")
	fl.DurationVar(&f.idle, "idle", 0, "fixed idle time before the fault (default: a seeded instant in the sample's stratum of [0, 1.5s], so a cell's samples sweep the range)")
	fl.Int64Var(&f.seed, "seed", 0, "the run's seed: every sample's seed and idle time derive from it and the sample's cell (default: from the clock; printed and recorded in the report, and --seed N reproduces the run)")
	fl.StringArrayVar(&f.phases, "phase", []string{"idle"}, "idle (the fault lands after an idle time swept over [0, 1.5s], stratified) or in-flight (while a request is unacknowledged); repeat for both")
	fl.StringArrayVar(&f.sysctls, "sysctl", nil, "KEY=VALUE kernel parameter set in the lab's namespaces only; repeat")
	fl.StringVar(&f.reportPath, "report", "halfopen-report.json", "where to write the v1 JSON report, sample by sample")
	fl.BoolVar(&f.pcap, "pcap", false, "keep every sample's capture of the router's ports as pcapng in captures/ beside the report (a surprising sample's is always kept)")
	fl.IntVar(&f.pool, "pool", 0, "labs at once (default: sized by measurement, from 4 per CPU while the harness's timing error stays low)")
	fl.StringVar(&f.profile, "profile", "adhoc", "profile name recorded in the report")
	fl.StringVar(&f.shard, "shard", "", "run only shard i/n of the matrix (every n-th cell), e.g. 2/4 on the second of four CI runners")
	return cmd
}

func runMatrix(cmd *cobra.Command, f runFlags) error {
	if len(f.detectors) == 0 || len(f.faults) == 0 {
		return badInput(fmt.Errorf("run needs at least one --detector and one --fault; `halfopen list` shows them"))
	}
	if f.samples <= 0 {
		return badInput(fmt.Errorf("--samples %d: a cell needs at least 1 sample", f.samples))
	}
	if f.budget < 0 || f.idle < 0 {
		return badInput(fmt.Errorf("--budget and --idle must not be negative"))
	}
	sysctls := map[string]string{}
	for _, kv := range f.sysctls {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || v == "" {
			return badInput(fmt.Errorf("--sysctl %q is not KEY=VALUE, e.g. net.ipv4.tcp_retries2=5", kv))
		}
		sysctls[k] = v
	}
	var phases []tcprules.Phase
	for _, ph := range f.phases {
		for _, name := range strings.Split(ph, ",") {
			p, err := tcprules.ParsePhase(name)
			if err != nil {
				return badInput(fmt.Errorf("--phase: %w", err))
			}
			phases = append(phases, p)
		}
	}
	var configs []harness.CellConfig
	for _, sd := range f.sides {
		for _, side := range strings.Split(sd, ",") {
			s, err := protocol.ParseSide(side)
			if err != nil {
				return badInput(err)
			}
			for _, d := range f.detectors {
				for _, flt := range f.faults {
					for _, ph := range phases {
						configs = append(configs, harness.CellConfig{
							Detector: d, Fault: flt, Side: s, Samples: f.samples, Budget: f.budget,
							Idle: f.idle, FixedIdle: cmd.Flags().Changed("idle"), Sysctls: sysctls, Phase: ph,
						})
					}
				}
			}
		}
	}
	configs, err := harness.Shard(configs, f.shard)
	if err != nil {
		return badInput(err)
	}
	if len(configs) == 0 {
		return badInput(fmt.Errorf("shard %s of this matrix holds no cell", f.shard))
	}
	// Check every spec before touching the machine.
	for _, c := range configs {
		if _, err := harness.Resolve(c); err != nil {
			return badInput(err)
		}
	}
	m, err := measure(cmd, measurement{
		configs: configs, seed: f.seed, seedSet: cmd.Flags().Changed("seed"), pool: f.pool,
		reportPath: f.reportPath, profile: f.profile, shard: f.shard, pcap: f.pcap,
	})
	if err != nil {
		return err
	}
	printTable(cmd.OutOrStdout(), m)
	return unmeasured(m, f.reportPath)
}

// unmeasured is the run's verdict on samples it could not measure: nil
// when every sample was measured, else one sentence (how many, the first
// error) with exit code 2, since a watcher program that crashed, hung or
// broke protocol v1 is bad input; the samples stay in the report as errors.
func unmeasured(m *harness.Matrix, reportPath string) error {
	total, failed, first := 0, 0, ""
	for _, c := range m.Cells() {
		for _, s := range c.Record().Samples {
			total++
			if s.Error != "" {
				if failed++; first == "" {
					first = s.Error
				}
			}
		}
	}
	if failed == 0 {
		return nil
	}
	return &exitError{code: 2, err: fmt.Errorf("%d of %d samples could not be measured (the first: %s); they are in %s as errors", failed, total, first, reportPath)}
}

// measurement is what run and check share: cells already resolved once
// (so that bad input was refused before the machine is touched), where the
// report goes, and how the labs are pooled.
type measurement struct {
	configs                    []harness.CellConfig
	seed                       int64
	seedSet                    bool // seed was given; otherwise it comes from the clock
	pool                       int
	reportPath, profile, shard string
	logDir                     string // where services' output is kept ("": only their last lines, in errors)
	pcap                       bool   // keep every sample's capture, not only a surprising one's
}

// measure runs the cells in fresh labs with a progress line, writing the
// v1 report sample by sample. SIGINT or SIGTERM tears the labs down and
// keeps what was measured (exit 130). It returns the matrix once its
// report is complete on disk.
func measure(cmd *cobra.Command, ms measurement) (*harness.Matrix, error) {
	if err := harness.Preflight(); err != nil {
		return nil, badInput(err)
	}
	seed := ms.seed
	if !ms.seedSet {
		var err error
		if seed, err = harness.RunSeed(); err != nil {
			return nil, badInput(err)
		}
	}
	if dir := filepath.Dir(ms.reportPath); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, badInput(fmt.Errorf("report directory %s: %w", dir, err))
		}
	}
	w, err := report.Create(ms.reportPath, &report.Report{
		Schema: report.SchemaV1, Profile: ms.profile, Started: time.Now().UTC(), Seed: seed, Shard: ms.shard,
		Environment: version.Environment(),
	})
	if err != nil {
		return nil, badInput(fmt.Errorf("create report: %w", err))
	}
	run := harness.NewRun()
	ctx, cancel := context.WithCancelCause(cmd.Context())
	defer cancel(nil)
	stop := run.CloseOnSignal(func(sig os.Signal) {
		cancel(fmt.Errorf("%v", sig))
	})
	defer stop()
	defer run.Close()

	prog := newProgress(cmd.ErrOrStderr())
	opt := harness.Options{Pool: ms.pool, Seed: seed, Report: w, Progress: prog.update, LogDir: ms.logDir, Pcap: ms.pcap}
	m, err := harness.NewMatrix(run, ms.configs, opt)
	if err != nil {
		return nil, badInput(err)
	}
	samples := 0
	for _, c := range m.Cells() {
		samples += c.Config.Samples
	}
	labs := fmt.Sprintf("%d labs at once", m.PoolSize())
	if m.Adaptive() {
		labs = fmt.Sprintf("labs at once from %d, sized by the harness's measured timing error", m.PoolSize())
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "halfopen %s: %d cells, %d samples, %s, seed %d, report %s\n",
		version.String(), len(ms.configs), samples, labs, seed, ms.reportPath)
	runErr := m.Run(ctx)
	prog.finish()
	if cerr := run.Close(); cerr != nil {
		fmt.Fprintln(cmd.ErrOrStderr(), "halfopen: cleanup:", cerr)
	}
	if runErr != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "halfopen: interrupted (%v); every sample measured so far is in %s\n", runErr, ms.reportPath)
		return nil, &exitError{code: 130, err: fmt.Errorf("interrupted: %v", runErr)}
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("write report: %w", err)
	}
	return m, nil
}

// progress prints a live line on a terminal, or one line per sample
// elsewhere (a CI log).
type progress struct {
	mu  sync.Mutex
	w   io.Writer
	tty bool
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
		p.tty = err == nil
	}
	return p
}

func (p *progress) update(pr harness.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	line := pr.String()
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
	} else {
		fmt.Fprintln(p.w, line)
	}
}

func (p *progress) finish() {
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// sideOf is a cell's side for tables, with its phase when the faults were
// aimed at a request in flight.
func sideOf(c *harness.Cell) string {
	if c.Config.Phase == tcprules.PhaseInFlight {
		return string(c.Config.Side) + " " + string(c.Config.Phase)
	}
	return string(c.Config.Side)
}
