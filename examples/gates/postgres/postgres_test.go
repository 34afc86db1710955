package pggate_test

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/types"

	pggate "github.com/halfopen/halfopen/examples/gates/postgres"
	"github.com/halfopen/halfopen/gate"
	"github.com/halfopen/halfopen/tcprules"
)

// TestMain keeps the samples' clusters in memory: each sample copies a
// 28 MB cluster into its own directory (os.MkdirTemp), which on a busy
// disk took up to 8 s of the harness's 10 s set-up, and in tmpfs takes
// milliseconds. TMPDIR, when set, wins. It names the report
// suite-gates-postgres.json unless HALFOPEN_GATE_NAME says otherwise, so
// that it and the other gates can share one HALFOPEN_REPORT_DIR.
func TestMain(m *testing.M) {
	if os.Getenv("HALFOPEN_GATE_NAME") == "" {
		os.Setenv("HALFOPEN_GATE_NAME", "postgres")
	}
	if os.Getenv("TMPDIR") == "" {
		if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
			os.Setenv("TMPDIR", "/dev/shm")
		}
	}
	gate.Main(m)
}

func TestPostgresGate(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "pgx gate")
}

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

// gateCase is one cell of the gate and what it must show.
type gateCase struct {
	name   string
	cell   gate.Cell
	expect []types.GomegaMatcher
}

// cases is the gate: each role with pgx's defaults and with the recommended
// settings, against every fault; HALFOPEN_GATE_FOCUS (a regular
// expression) keeps only the cells whose names match.
func cases() []gateCase {
	samples := 2
	if n, err := strconv.Atoi(os.Getenv("HALFOPEN_SAMPLES")); err == nil && n > 0 {
		samples = n
	}
	var out []gateCase
	addPhase := func(phase tcprules.Phase, name, role string, cfg map[string]string, fault string, budget time.Duration, expect ...types.GomegaMatcher) {
		label := fmt.Sprintf("%s %s × %s", role, name, fault)
		if phase == tcprules.PhaseInFlight {
			label += " in flight"
		}
		out = append(out, gateCase{
			name:   label,
			cell:   gate.Cell{Watcher: role, Peer: pggate.ServiceName, Fault: fault, Samples: samples, Budget: budget, Config: cfg, Phase: phase},
			expect: expect,
		})
	}
	add := func(name, role string, cfg map[string]string, fault string, budget time.Duration, expect ...types.GomegaMatcher) {
		addPhase(tcprules.PhaseIdle, name, role, cfg, fault, budget, expect...)
	}
	silent := []string{"blackhole", "host-crash", "middlebox-state-loss"}
	reboot, restart := "host-reboot:down=1s", "router-restart:outage=2s"
	// A disturbance is watched for this long after it heals (otherwise the
	// prediction's end: 18 minutes for a pool with the defaults): longer
	// than any recommended setting takes to drop a connection.
	tail := 10 * time.Second

	// A query in flight with pgx's defaults: Go's keepalive 15 s / 15 s / 9
	// gives up 150 s after the last segment; a rebooted server answers the
	// first probe, 15 s after it, with an RST.
	for _, f := range silent {
		add("defaults", pggate.RoleQuery, nil, f, 175*time.Second, gate.DetectWithin(170*time.Second), gate.GiveUpWith("ETIMEDOUT"))
	}
	add("defaults", pggate.RoleQuery, nil, reboot, 30*time.Second, gate.DetectWithin(20*time.Second), gate.GiveUpWith("ECONNRESET"))
	add("defaults", pggate.RoleQuery, nil, restart, tail, gate.Survive())
	// Recommended: keepalive 1 s / 1 s / 4 and a 5 s user timeout: [4, 5] s
	// after the last segment.
	for _, f := range silent {
		add("recommended", pggate.RoleQuery, recommendedQuery, f, 0, gate.DetectWithin(6500*time.Millisecond), gate.GiveUpWith("ETIMEDOUT"))
	}
	add("recommended", pggate.RoleQuery, recommendedQuery, reboot, 0, gate.DetectWithin(3500*time.Millisecond), gate.GiveUpWith("ECONNRESET"))
	add("recommended", pggate.RoleQuery, recommendedQuery, restart, tail, gate.Survive())

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
	finding := []types.GomegaMatcher{gate.FollowForecast(), gate.NeverDetectInPhase(tcprules.PhaseInFlight)}
	for _, f := range []string{"blackhole", "middlebox-state-loss"} {
		addPhase(tcprules.PhaseInFlight, "recommended", pggate.RoleQuery, recommendedQuery, f, 0, gate.DetectWithin(6500*time.Millisecond), gate.GiveUpWith("ETIMEDOUT"))
		addPhase(tcprules.PhaseInFlight, "keepalive-only", pggate.RoleQuery, keepaliveOnlyQuery, f, inFlightBudget, finding...)
	}
	// With pgx's defaults the idle query is given up after Go's 150 s
	// keepalive; in flight, not within the same 175 s.
	addPhase(tcprules.PhaseInFlight, "defaults", pggate.RoleQuery, nil, "blackhole", 175*time.Second, finding...)

	// An idle pool with pgx's defaults: the ping pgxpool sends on Acquire
	// has no bound, is never acknowledged, and keepalive does not probe a
	// connection with data in flight: only tcp_retries2 ends it, after
	// some 15 minutes. Censored at 30 s: it never detects, said plainly.
	for _, f := range silent {
		add("defaults", pggate.RolePool, nil, f, 30*time.Second, gate.NeverDetect())
	}
	add("defaults", pggate.RolePool, nil, reboot, 0, gate.DetectWithin(5*time.Second), gate.GiveUpWith("ECONNRESET"))
	add("defaults", pggate.RolePool, nil, restart, tail, gate.Survive())
	// Recommended: PingTimeout 4 s on a ping every 2 s: [4, 6.2] s.
	for _, f := range silent {
		add("recommended", pggate.RolePool, recommendedPool, f, 0, gate.DetectWithin(7500*time.Millisecond), gate.GiveUpWith("i/o timeout"))
	}
	add("recommended", pggate.RolePool, recommendedPool, reboot, 0, gate.DetectWithin(5*time.Second), gate.GiveUpWith("ECONNRESET"))
	add("recommended", pggate.RolePool, recommendedPool, restart, tail, gate.Survive())
	// A context deadline of 4 s on each Ping bounds it the same way.
	add("timeout=4s", pggate.RolePool, deadlinePool, "blackhole", 0, gate.DetectWithin(7500*time.Millisecond))
	add("timeout=4s", pggate.RolePool, deadlinePool, restart, tail, gate.Survive())

	if re := os.Getenv("HALFOPEN_GATE_FOCUS"); re != "" {
		keep := out[:0]
		for _, c := range out {
			if regexp.MustCompile(re).MatchString(c.name) {
				keep = append(keep, c)
			}
		}
		out = keep
	}
	return out
}

var _ = Describe("pgx v5.12.0 against PostgreSQL", Ordered, ContinueOnFailure, Label("netns", "gates"), func() {
	all := cases()
	var results []*gate.Result

	// The cells are measured together, before the specs judge them one by
	// one: a query with the defaults waits almost three minutes.
	BeforeAll(func(ctx SpecContext) {
		DeferCleanup(pggate.RemoveTemplate)
		Expect(pggate.PrepareTemplate()).To(Succeed())
		cells := make([]gate.Cell, len(all))
		for i, c := range all {
			cells[i] = c.cell
		}
		var err error
		results, err = gate.RunAll(ctx, cells...)
		Expect(err).NotTo(HaveOccurred())
	}, NodeTimeout(20*time.Minute))

	for i, c := range all {
		It(c.name, func() {
			r := results[i]
			AddReportEntry(c.name, r.String())
			for _, m := range c.expect {
				Expect(r).To(m)
			}
		})
	}
})
