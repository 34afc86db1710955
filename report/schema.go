// Package report holds halfopen's measurement report: the v1 schema
// ("halfopen.report/v1"), an incremental crash-safe writer, a validating
// reader, renderers (Markdown, HTML with SVG plots, JUnit XML), merging of
// shards, comparison between versions, budget gates and the QoS metrics of
// Chen, Toueg and Aguilera for false positives.
//
// # Formats
//
// JSON (Writer, Read, Parse) is the contract: one object with "schema"
// equal to SchemaV1, the environment and the cells. The Writer rewrites the
// whole file atomically after every change (temporary file in the same
// directory, fsync, rename, fsync of the directory), so the file on disk is
// always valid JSON; "complete" is false until Writer.Close. The reader
// rejects anything else with an *InputError naming the file and line.
//
// Markdown (Markdown) and HTML (HTML, RenderHTML) open with the overview:
// the detector × fault matrix of each side, every cell an Outcome (Judge)
// linked to its details, and findings computed from the measurements. Per
// fault, every detector's samples share one logarithmic time axis with
// their predicted bands; rationales, notes and per-cell sysctl sets are
// printed once, in legends. Durations are formatted in one place
// (FormatSeconds); p50, p95 and max are nearest-rank quantiles of the
// detected samples, and censored samples are counted, never timed. The
// HTML page is self-contained (inline CSS and SVG, no script, no fonts,
// no network) and draws a packet timeline for each sample with a capture
// (Sample.Pcap, read with package capture).
//
// JUnit XML (JUnit) has one testsuite per cell kind and one testcase per
// cell (classname the detector, name the fault and side); a testcase has a
// failure listing each budget of a BudgetResult it broke and each sample
// error. Budgets that matched no cell are failed testcases of their own.
//
// Budgets YAML (ParseBudgets, ReadBudgets) is a list of cell patterns with
// limits, read strictly; CheckBudgets checks a report against it. Compare runs a
// censoring-aware Mann–Whitney U test per cell between two reports, and
// Merge joins the shards of one run.
package report

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/halfopen/halfopen/tcprules"
)

// SchemaV1 is the value of Report.Schema for this version of the contract.
const SchemaV1 = "halfopen.report/v1"

// Kind says what a cell measures.
type Kind string

// Expectation is what theory says a fault does to a detector.
type Expectation string

// Expectations (Cell.Expect).
const (
	// ExpectDetect: the detector decides, inside its predicted range, with
	// one of the predicted reasons.
	ExpectDetect Expectation = "detect"
	// ExpectNever: the detector cannot see the fault; every sample must be
	// censored.
	ExpectNever Expectation = "never"
	// ExpectSurvive: a disturbance; the connection must survive and every
	// decision is a false positive.
	ExpectSurvive Expectation = "survive"
	// ExpectFalsePositives: a disturbance the detector cannot tell from a
	// death: every sample makes at least one false positive.
	ExpectFalsePositives Expectation = "false-positives"
	// ExpectUnknown: theory makes no claim; the cell is measured, not
	// judged.
	ExpectUnknown Expectation = ""
)

// Cell kinds.
const (
	// KindDetection is a cell that measures how long a detector takes to
	// notice a fault that kills the connection.
	KindDetection Kind = "detection"
	// KindDisturbance is a cell in which the connection must survive, and
	// every decision of the detector is a false positive.
	KindDisturbance Kind = "disturbance"
	// KindCalibration is a cell that measures the harness's own timing error.
	KindCalibration Kind = "calibration"
	// KindScale is a cell in which a passive server holds many idle
	// connections from one client host that then dies: how long the server
	// takes to free each of them, and what they cost while healthy.
	KindScale Kind = "scale"
)

// Report is one run of halfopen: its environment and its cells.
type Report struct {
	Schema      string      `json:"schema"`
	Profile     string      `json:"profile"`
	Started     time.Time   `json:"started"`
	Seed        int64       `json:"seed"`
	Shard       string      `json:"shard,omitempty"` // "i/n" when this report is one shard of a matrix
	Complete    bool        `json:"complete"`        // false while a run is writing it, or when it was killed
	Environment Environment `json:"environment"`
	Cells       []Cell      `json:"cells"`
	// Frontier holds the tolerance-vs-detection trade-off of each
	// configuration measured for it (the trade-off sweeps).
	Frontier []FrontierPoint `json:"frontier,omitempty"`
}

// FrontierPoint is one detector configuration on the tolerance-vs-detection
// trade-off: the longest outage it survived and the time it took to detect
// a dead peer. No detector detects death sooner than the longest outage it
// tolerates, so ToleratedS/DetectionS is at most 1.
type FrontierPoint struct {
	Detector   string  `json:"detector"`       // canonical detector spec
	ToleratedS float64 `json:"tolerated_s"`    // longest outage survived, seconds
	DetectionS float64 `json:"detection_s"`    // median detection time of a dead peer, seconds
	Note       string  `json:"note,omitempty"` // how the point was measured
}

// Environment says where and how the samples were measured.
type Environment struct {
	Kernel   string `json:"kernel"`
	Go       string `json:"go"`
	Halfopen string `json:"halfopen"`
	CPUs     int    `json:"cpus,omitempty"`
	Pool     int    `json:"pool,omitempty"` // labs run at once (the most, when sized by measurement)
	// PoolTicks counts the adaptive pool's decisions, one per tick of its
	// controller, by what decided them ("grew", "shrank: probe",
	// "shrank: CPU", "held: probe", "held: CPU", "held: no job waited",
	// "held: at its bound"): why a pool stayed small, or grew.
	PoolTicks map[string]int `json:"pool_ticks,omitempty"`
	// Tick is the kernel tick the forecasts counted in (tcprules.KernelTick):
	// CONFIG_HZ, and whether it was read from the kernel's configuration
	// or assumed. Reports written before it was recorded have none; their
	// forecasts counted in a fixed 250 Hz (ForecastTick).
	Tick *tcprules.Tick `json:"tick,omitempty"`
	// CPUIdle says how idle CPUs waited during the run: "polling" while
	// the harness held a PM QoS request of 0 µs, or "halting" and why not.
	CPUIdle string `json:"cpu_idle,omitempty"`
	// Privilege says with what privilege the run made its labs, and what
	// it went without that root would have given it.
	Privilege *Privilege `json:"privilege,omitempty"`
	// WallS is the wall time the run spent measuring, seconds: from the
	// report's start to its last measurement (several matrices may share
	// one report, as a gate suite's cells do); of a merged report, the
	// length of its Spans, plus the wall times of parts written without a
	// start (Report.Throughput).
	WallS float64 `json:"wall_s,omitempty"`
	// Spans are a merged report's stretches of measuring, disjoint and in
	// order: the union of its parts' [Started, Started+WallS]. Parts run
	// at once (make test-faults runs the gates beside the suites), and
	// their wall times summed counted the seconds they shared once per
	// part. A report of one part has none: its span is Started and WallS.
	Spans []Span `json:"spans,omitempty"`
	// CalibrationErrorMs is the harness's own timing error, measured under
	// the same parallel load as the samples. A merged report holds the
	// quantiles of all its parts' errors together, from their histograms
	// (to the bin); of parts written without one, the largest of theirs
	// per quantile, a bound from above.
	CalibrationErrorMs *Quantiles `json:"calibration_error_ms"`
	// Calibration says how CalibrationErrorMs was measured.
	Calibration []CalibrationProbe `json:"calibration,omitempty"`
	// ToleranceS is the judge's tolerance, seconds (PredictionTolerance):
	// the margin on each side of a prediction within which a detected
	// sample agreed with theory when the report was written. The writer
	// records it; reports written before it was recorded used 0.15 s.
	ToleranceS float64 `json:"tolerance_s,omitempty"`
	// ProbeUnloadedMs is the latency probe's error on this machine with no
	// lab running but the probe's own, measured before the first sample:
	// the machine's baseline, which the pool is sized against.
	ProbeUnloadedMs *Quantiles `json:"probe_unloaded_ms,omitempty"`
	// ProbeLoadedMs is the same probe's error over the run, under the
	// pool's load; a merged report holds those of all its parts'
	// datagrams together, as CalibrationErrorMs does.
	ProbeLoadedMs *Quantiles `json:"probe_loaded_ms,omitempty"`
	// Sysctls is what reports written before per-cell sysctls held: one
	// map for the whole run, role prefixed ("watcher/net.ipv4.tcp_retries2").
	// It is read from old reports and never written; Cell.Sysctls replaces it.
	Sysctls map[string]string `json:"sysctls,omitempty"`
}

// legacyHZ is the tick rate halfopen's rules were fixed at before they
// read the running kernel's.
const legacyHZ = 250

// ForecastTick is the kernel tick the report's forecasts counted in: the
// one recorded, or, in a report written before it was recorded, the
// 250 Hz the rules were then fixed at.
func (e *Environment) ForecastTick() tcprules.Tick {
	if e.Tick != nil {
		return *e.Tick
	}
	return tcprules.Tick{HZ: legacyHZ, Source: "not recorded; halfopen then counted every forecast in a fixed 250 Hz", Assumed: true}
}

// Privilege is how a run was privileged: as root, or as root of a user
// namespace of its own made by an ordinary user.
type Privilege struct {
	// Mode is "root" or "user namespace (uid N)", N the user's uid.
	Mode string `json:"mode"`
	// Degraded holds one sentence for each thing root would have given
	// the run that it went without (real-time priority, ...).
	Degraded []string `json:"degraded,omitempty"`
}

// Text is the privilege as one line: the mode, then what the run went
// without, if anything.
func (p Privilege) Text() string {
	if len(p.Degraded) == 0 {
		return p.Mode
	}
	return p.Mode + "; without: " + strings.Join(p.Degraded, "; ")
}

// Quantiles summarises a distribution in milliseconds. Hist, where set,
// bins its values so that the parts of a run merge exactly (Histogram).
type Quantiles struct {
	P50  float64    `json:"p50"`
	P99  float64    `json:"p99"`
	Max  float64    `json:"max,omitempty"`
	N    int        `json:"n,omitempty"`
	Hist *Histogram `json:"hist,omitempty"`
}

// CalibrationProbe is one way the harness measured its own error.
type CalibrationProbe struct {
	Name    string    `json:"name"`   // e.g. "datagram-on-veth", "fin-on-veth", "timer-lateness"
	Method  string    `json:"method"` // one sentence: what is timed against what
	ErrorMs Quantiles `json:"error_ms"`
}

// Cell is one (detector, fault, side, kind) combination and its samples.
type Cell struct {
	Detector string `json:"detector"`       // canonical spec, e.g. "keepalive-tuned:cnt=3,idle=1s,intvl=1s"
	Fault    string `json:"fault"`          // canonical spec, e.g. "router-restart:outage=1s"
	Side     string `json:"side"`           // "client" or "server": which end the watcher is
	Kind     Kind   `json:"kind"`           // KindDetection, KindDisturbance or KindCalibration
	Path     string `json:"path,omitempty"` // "direct" or "toxiproxy"
	// Phase is the state the cell's faults were aimed at: "in-flight"
	// (a request unacknowledged), or empty for the idle sweep. It is part
	// of the cell's key.
	Phase string `json:"phase,omitempty"`

	BudgetS       float64     `json:"budget_s"`
	PredictedS    *[2]float64 `json:"predicted_s"` // null when theory predicts no detection
	PredictedRule string      `json:"predicted_rule,omitempty"`
	// Expect is what theory says this fault does to this detector:
	// "detect", "never" (must be censored), "survive" (a disturbance: every
	// decision is a false positive) or "" (no claim).
	Expect  Expectation `json:"expect,omitempty"`
	Reasons []string    `json:"reasons,omitempty"` // the reasons theory allows when it detects

	Samples []Sample `json:"samples"`

	// FalsePositives counts decisions "dead" while the peer was alive.
	FalsePositives int `json:"false_positives"`
	// ObservedConnS is the connection time observed in this cell, in seconds.
	ObservedConnS float64 `json:"observed_conn_s"`
	// Mistakes are the false positives as intervals, for the QoS metrics.
	Mistakes []Mistake `json:"mistakes,omitempty"`
	QoS      *QoS      `json:"qos,omitempty"`

	Overhead *Overhead `json:"overhead,omitempty"`
	Note     string    `json:"note,omitempty"` // why the result is what it is (e.g. proxy hides the peer)

	// Scale holds what a KindScale cell measured (its packets and CPU
	// while healthy are in Overhead).
	Scale *Scale `json:"scale,omitempty"`

	// Sysctls are the kernel parameters this cell's labs ran with, read
	// back from each namespace after they were set: host role ("peer",
	// "router", "watcher") → key ("net.ipv4.tcp_retries2") → value.
	Sysctls map[string]map[string]string `json:"sysctls,omitempty"`
}

// Sample is one measured attempt. A sample that did not decide within the
// budget is censored: Detected false, Seconds null, Reason "budget".
// A sample the harness could not measure has Error set.
type Sample struct {
	Detected bool     `json:"detected"`
	Seconds  *float64 `json:"seconds"`
	Reason   string   `json:"reason"`
	Error    string   `json:"error,omitempty"`

	IdleS      float64 `json:"idle_s,omitempty"`      // idle time before the fault
	Seed       int64   `json:"seed,omitempty"`        // seed of this sample
	InjectedNs int64   `json:"injected_ns,omitempty"` // CLOCK_MONOTONIC of the injection
	DecidedNs  int64   `json:"decided_ns,omitempty"`  // CLOCK_MONOTONIC of the decision
	// Window is the observed duration of a disturbance sample, in seconds.
	WindowS float64 `json:"window_s,omitempty"`
	// FalsePositives counts wrong decisions in a disturbance sample.
	FalsePositives int `json:"false_positives,omitempty"`
	// PeerSaw records what the peer received, when it matters (oob-probe).
	PeerSaw string `json:"peer_saw,omitempty"`
	// Packets and Bytes crossed the router in a disturbance sample's
	// window; WatcherCPUS is the watcher process's CPU time in it, seconds.
	// The cell's Overhead is derived from them.
	Packets     uint64  `json:"packets,omitempty"`
	Bytes       uint64  `json:"bytes,omitempty"`
	WatcherCPUS float64 `json:"watcher_cpu_s,omitempty"`
	// Phase is the state the fault met the connection in ("idle" or
	// "in-flight"); State is that state, read from the watcher's TCP_INFO
	// at the fault. Forecast is this sample's own prediction from it, and
	// ResidualS the measured time minus Forecast.AtS, seconds.
	Phase     tcprules.Phase      `json:"phase,omitempty"`
	State     *tcprules.ConnState `json:"state,omitempty"`
	Forecast  *tcprules.Forecast  `json:"forecast,omitempty"`
	ResidualS *float64            `json:"residual_s,omitempty"`
	// Pcap is the path, relative to the report, of a pcapng capture of the
	// sample's traffic on the router (package capture); "" when none was kept.
	Pcap string `json:"pcap,omitempty"`
	// Marks are the instants the watcher marked (protocol.Session.Mark)
	// at or after the fault, in the order it printed them.
	Marks []Mark `json:"marks,omitempty"`
	// Log is the path, relative to the report, of the sample's log: what
	// its watcher and peer programs logged (protocol log events), marked
	// and printed on standard error, one line each, in seconds from the
	// fault. LogTail is its last lines, kept in the report when the
	// sample could not be measured or surprises (Cell.Surprise).
	Log     string   `json:"log,omitempty"`
	LogTail []string `json:"log_tail,omitempty"`
}

// Mark is one instant a watcher marked: its name, and its seconds after
// the fault.
type Mark struct {
	Name string  `json:"name"`
	S    float64 `json:"s"`
}

// MarkS returns the seconds after the fault of the sample's first mark
// named name, and whether it has one.
func (s Sample) MarkS(name string) (float64, bool) {
	for _, m := range s.Marks {
		if m.Name == name {
			return m.S, true
		}
	}
	return 0, false
}

// Mistake is one false positive: the detector suspected a live peer at
// StartS and trusted it again (reconnected) at EndS, both in seconds from
// the start of the observation window of its sample.
type Mistake struct {
	StartS float64 `json:"start_s"`
	EndS   float64 `json:"end_s"`
	// Sample is the index in Cell.Samples of the sample whose observation
	// window StartS and EndS are measured from; mistakes of different
	// samples lie on different time lines.
	Sample int `json:"sample,omitempty"`
}

// QoS holds Chen, Toueg and Aguilera's accuracy metrics for a detector.
type QoS struct {
	WindowS          float64  `json:"window_s"`
	MistakesPerHour  float64  `json:"mistakes_per_conn_hour"`
	MistakeRecurS    *float64 `json:"t_mr_s"` // null with fewer than two mistakes
	MistakeDurationS *float64 `json:"t_m_s"`  // null without mistakes
	QueryAccuracy    float64  `json:"p_a"`
}

// Overhead is what a detector costs while the peer is alive and idle.
type Overhead struct {
	PacketsPerConnMin float64 `json:"packets_per_conn_min"`
	BytesPerConnMin   float64 `json:"bytes_per_conn_min"`
	WatcherCPUPercent float64 `json:"watcher_cpu_percent,omitempty"`
	WindowS           float64 `json:"window_s,omitempty"`
}

// Summary is one line for a sample: its time and reason, "budget" when it
// was censored, or its error.
func (s Sample) Summary() string {
	switch {
	case s.Error != "":
		return "error: " + s.Error
	case s.Detected && s.Seconds != nil:
		return fmt.Sprintf("%.3fs %s", *s.Seconds, s.Reason)
	}
	return s.Reason
}

// Scale is one lab of a scale cell: a passive server of one design holding
// Conns idle connections from one client host when the fault came.
type Scale struct {
	// Design is how the server waits: "goroutine" (one goroutine per
	// connection, blocked in its detector, the reference text's thread per
	// connection) or "epoll" (one thread in one epoll loop).
	Design string `json:"design"`
	Conns  int    `json:"conns"`
	// Freed counts the connections the server freed (closed) within the
	// budget; the other Conns-Freed are censored.
	Freed int `json:"freed"`
	// FreeMs: time from the fault until the server freed a connection,
	// nearest-rank over the freed ones, in milliseconds; nil when none was.
	FreeMs *Quantiles `json:"free_ms"`
	// Reasons counts why the connections were freed.
	Reasons map[string]int `json:"reasons,omitempty"`
	// EstablishS is how long the client took to open the Conns connections
	// (paced on purpose, see the cell's note).
	EstablishS float64 `json:"establish_s"`
	// BaseRSSBytes is the server's resident set before its first
	// connection; RSSBytes is it holding all Conns while healthy.
	BaseRSSBytes uint64 `json:"base_rss_bytes"`
	RSSBytes     uint64 `json:"rss_bytes"`
	// Threads is the server's OS thread count holding all Conns.
	Threads int `json:"threads,omitempty"`
}

// RSSPerConn is the server's resident memory per connection, in bytes.
func (s *Scale) RSSPerConn() float64 {
	if s.Conns == 0 || s.RSSBytes < s.BaseRSSBytes {
		return 0
	}
	return float64(s.RSSBytes-s.BaseRSSBytes) / float64(s.Conns)
}

// Variant names the lab within its cell key: "epoll/10000".
func (s *Scale) Variant() string { return fmt.Sprintf("%s/%d", s.Design, s.Conns) }

// PoolDecisions says in one line how often the adaptive pool's controller
// decided what, most frequent first: "held: probe 40 · grew 12 · ...".
func (e Environment) PoolDecisions() string {
	keys := make([]string, 0, len(e.PoolTicks))
	for k := range e.PoolTicks {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if e.PoolTicks[keys[i]] != e.PoolTicks[keys[j]] {
			return e.PoolTicks[keys[i]] > e.PoolTicks[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, e.PoolTicks[k])
	}
	return strings.Join(parts, " · ")
}
