package pggate_test

import (
	"os"
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	pggate "github.com/halfopen/halfopen/examples/gates/postgres"
	"github.com/halfopen/halfopen/gate"
)

// TestMain keeps the samples' clusters in memory: each sample copies a
// 28 MB cluster into its own directory (os.MkdirTemp), which on a busy
// disk took up to 8 s of the harness's 10 s set-up, and in tmpfs takes
// milliseconds. TMPDIR, when set, wins. The report is
// suite-gates-postgres.json, named after the module.
func TestMain(m *testing.M) {
	if os.Getenv("TMPDIR") == "" {
		if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
			os.Setenv("TMPDIR", "/dev/shm")
		}
	}
	gate.Main(m)
}

// TestPostgresGate runs the gate; a filter chooses what is measured:
//
//	go tool ginkgo --label-filter='pool && recommended' .
func TestPostgresGate(t *testing.T) {
	gate.RunSpecs(t, "pgx gate")
}

// The samples' clusters are copies of one template cluster, made once
// before the first entry is measured (only when a spec will run) and
// removed after the suite.
var _ = BeforeSuite(func() {
	DeferCleanup(pggate.RemoveTemplate)
	Expect(pggate.PrepareTemplate()).To(Succeed())
})

// The settings a pgx user should choose against a dead server.
var (
	// A query: TCP keepalive 1 s / 1 s / 4 on the dialer (four probes,
	// not three: a 2 s router restart can swallow up to three probes one
	// second apart) for the query the server acknowledged and sleeps on,
	// and TCP_USER_TIMEOUT 5 s for the query still unacknowledged when the
	// server dies (keepalive is inert while data is in flight,
	// tcp_timer.c L817–821: only tcp_retries2, ~924 s, or the user timeout,
	// t1 + 5 s, end it). With the user timeout the keepalive count is
	// ignored, and the kernel gives up at the first probe at least 5 s
	// after the last segment received: idle + 4·intvl, as with cnt 4.
	recommendedQuery = map[string]string{"idle": "1s", "intvl": "1s", "cnt": "4", "usertimeout": "5s"}
	// keepaliveOnlyQuery is the recommendation before the in-flight cells
	// were measured: it passes every idle cell, and never notices a dead
	// server while its query is unacknowledged.
	keepaliveOnlyQuery = map[string]string{"idle": "1s", "intvl": "1s", "cnt": "4"}
	// An idle pool pinged every 2 s: pgxpool's PingTimeout 4 s (above the
	// ~3.1 s a ping sent at the start of a 2 s outage needs: its
	// retransmissions go 0.2, 0.6, 1.4 and 3.0 s after it), TCP_USER_TIMEOUT
	// 6 s for writes in flight, and keepalive for connections left idle.
	recommendedPool = map[string]string{"pingtimeout": "4s", "usertimeout": "6s", "idle": "5s", "intvl": "1s", "cnt": "4"}
	// The same pool bounded only by a context deadline on each Ping.
	deadlinePool = map[string]string{"timeout": "4s"}
)

// inFlightBudget is how long an in-flight sample waits when theory says
// the kernel gives up only after tcp_retries2 (t1 + 928.5 s, KERNEL-RULES
// §2, §6): longer than any keepalive rule here but the defaults' 169 s,
// far shorter than the retransmission timer's 924 s. A decision within it
// would be a regression in the finding, not a pass.
const inFlightBudget = 60 * time.Second

// samples per entry: $HALFOPEN_SAMPLES, or 2.
func samples() int {
	if n, err := strconv.Atoi(os.Getenv("HALFOPEN_SAMPLES")); err == nil && n > 0 {
		return n
	}
	return 2
}

// The faults, typed; the three silent ones are gated alike.
var (
	silent = []struct {
		fault gate.Fault
		label string
	}{{gate.Blackhole(), "blackhole"}, {gate.HostCrash(), "host-crash"}, {gate.MiddleboxStateLoss(gate.Firewall, gate.TheFlow), "middlebox-state-loss"}}
	reboot  = gate.HostReboot(time.Second)
	restart = gate.RouterRestart(2 * time.Second)
)

// entries is the gate: each role with pgx's defaults and with the
// recommended settings, against every fault, each entry labelled with its
// role, its settings, its fault and its phase.
func entries() []gate.TableEntry {
	n := samples()
	var out []gate.TableEntry
	add := func(phase gate.Phase, settings string, role gate.Role, roleLabel string, cfg map[string]string, fault gate.Fault, faultLabel string, budget time.Duration, expect ...any) {
		name := role.Name() + " " + settings + " × " + fault.String()
		labels := Label(roleLabel, settings, faultLabel)
		if phase == gate.PhaseInFlight {
			name += " in flight"
			labels = Label(roleLabel, settings, faultLabel, "in-flight")
		}
		cell := gate.Cell{Watcher: role, Peer: pggate.Server, Fault: fault, Samples: n, Budget: budget, Config: cfg, Phase: phase}
		out = append(out, gate.Entry(name, cell, append([]any{labels}, expect...)...))
	}
	query := func(settings string, cfg map[string]string, fault gate.Fault, faultLabel string, budget time.Duration, expect ...any) {
		add(gate.PhaseIdle, settings, pggate.Query, "query", cfg, fault, faultLabel, budget, expect...)
	}
	pool := func(settings string, cfg map[string]string, fault gate.Fault, faultLabel string, budget time.Duration, expect ...any) {
		add(gate.PhaseIdle, settings, pggate.Pool, "pool", cfg, fault, faultLabel, budget, expect...)
	}
	// A disturbance is watched for this long after it heals (otherwise the
	// prediction's end: 18 minutes for a pool with the defaults): longer
	// than any recommended setting takes to drop a connection.
	tail := 10 * time.Second

	// A query in flight with pgx's defaults: Go's keepalive 15 s / 15 s / 9
	// gives up 150 s after the last segment; a rebooted server answers the
	// first probe, 15 s after it, with an RST.
	for _, f := range silent {
		query("defaults", nil, f.fault, f.label, 175*time.Second, gate.DetectWithin(170*time.Second), gate.GiveUpWith("ETIMEDOUT"))
	}
	query("defaults", nil, reboot, "host-reboot", 30*time.Second, gate.DetectWithin(20*time.Second), gate.GiveUpWith("ECONNRESET"))
	query("defaults", nil, restart, "router-restart", tail, gate.Survive())
	// Recommended: keepalive 1 s / 1 s / 4 and a 5 s user timeout: [4, 5] s
	// after the last segment.
	for _, f := range silent {
		query("recommended", recommendedQuery, f.fault, f.label, 0, gate.DetectWithin(6500*time.Millisecond), gate.GiveUpWith("ETIMEDOUT"))
	}
	query("recommended", recommendedQuery, reboot, "host-reboot", 0, gate.DetectWithin(3500*time.Millisecond), gate.GiveUpWith("ECONNRESET"))
	query("recommended", recommendedQuery, restart, "router-restart", tail, gate.Survive())

	// The query in flight: the fault lands while the query is
	// unacknowledged (before the server's delayed ACK), so keepalive never
	// probes. With the user timeout the kernel gives up at t1 + 5 s, t1
	// the first retransmission 0.41 s after the query (KERNEL-RULES §2,
	// §6): 5.4 s after the fault, within the idle cells' 6.5 s. Without it
	// only tcp_retries2 ends the wait, ~924 s later: never within the
	// 60 s budget, the finding.
	// The finding is asserted sample by sample: every sample that met the
	// request in flight is censored, and every sample follows its own
	// forecast (a fault that came after the ACK, on a loaded machine, met
	// an idle connection and is held to the keepalive rule instead).
	finding := []any{gate.FollowForecast(), gate.NeverDetectInPhase(gate.PhaseInFlight)}
	for _, f := range silent {
		if f.label == "host-crash" {
			continue
		}
		add(gate.PhaseInFlight, "recommended", pggate.Query, "query", recommendedQuery, f.fault, f.label, 0, gate.DetectWithin(6500*time.Millisecond), gate.GiveUpWith("ETIMEDOUT"))
		add(gate.PhaseInFlight, "keepalive-only", pggate.Query, "query", keepaliveOnlyQuery, f.fault, f.label, inFlightBudget, finding...)
	}
	// With pgx's defaults the idle query is given up after Go's 150 s
	// keepalive; in flight, not within the same 175 s.
	add(gate.PhaseInFlight, "defaults", pggate.Query, "query", nil, gate.Blackhole(), "blackhole", 175*time.Second, finding...)

	// An idle pool with pgx's defaults: the ping pgxpool sends on Acquire
	// has no bound, is never acknowledged, and keepalive does not probe a
	// connection with data in flight: only tcp_retries2 ends it, after
	// some 15 minutes. Censored at 30 s: it never detects, said plainly.
	for _, f := range silent {
		pool("defaults", nil, f.fault, f.label, 30*time.Second, gate.NeverDetect())
	}
	pool("defaults", nil, reboot, "host-reboot", 0, gate.DetectWithin(5*time.Second), gate.GiveUpWith("ECONNRESET", "ECONNREFUSED"))
	pool("defaults", nil, restart, "router-restart", tail, gate.Survive())
	// Recommended: PingTimeout 4 s on a ping every 2 s: [4, 6.2] s.
	for _, f := range silent {
		pool("recommended", recommendedPool, f.fault, f.label, 0, gate.DetectWithin(7500*time.Millisecond), gate.GiveUpWith("i/o timeout"))
	}
	pool("recommended", recommendedPool, reboot, "host-reboot", 0, gate.DetectWithin(5*time.Second), gate.GiveUpWith("ECONNRESET", "ECONNREFUSED"))
	pool("recommended", recommendedPool, restart, "router-restart", tail, gate.Survive())
	// A context deadline of 4 s on each Ping bounds it the same way.
	pool("ping-deadline", deadlinePool, gate.Blackhole(), "blackhole", 0, gate.DetectWithin(7500*time.Millisecond))
	pool("ping-deadline", deadlinePool, restart, "router-restart", tail, gate.Survive())
	return out
}

// The gate: the entries a filter chooses are measured together (a query
// with the defaults waits almost three minutes), then each is judged as
// its own spec.
var _ = gate.DescribeTable("pgx v5.12.0 against PostgreSQL", Label("netns", "gates"), NodeTimeout(20*time.Minute), entries())
