package redisgate_test

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

	redisgate "github.com/halfopen/halfopen/examples/gates/redis"
	"github.com/halfopen/halfopen/gate"
	"github.com/halfopen/halfopen/tcprules"
)

// TestMain names the suite's report suite-gates-redis.json unless
// HALFOPEN_GATE_NAME says otherwise, so that it and the other gates can
// share one HALFOPEN_REPORT_DIR.
func TestMain(m *testing.M) {
	if os.Getenv("HALFOPEN_GATE_NAME") == "" {
		os.Setenv("HALFOPEN_GATE_NAME", "redis")
	}
	gate.Main(m)
}

func TestRedisGate(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "go-redis gate")
}

// The settings a go-redis user should choose against a dead server: TCP
// keepalive 1 s / 1 s / 4 on the dialer (four probes, not three: a 2 s
// router restart can swallow up to three probes one second apart) for a
// connection that waits idle, TCP_USER_TIMEOUT 5 s for one whose request
// is unacknowledged (keepalive is inert then: tcp_keepalive_timer,
// tcp_timer.c L817–821; the retransmission timer gives up only after
// tcp_retries2 = 15, ~924 s, unless the user timeout ends it at t1 + 5 s),
// and, for the client that runs blocking commands, no retries: a BLPOP
// whose connection died is otherwise sent again on new connections to the
// dead server while the application waits. With the user timeout, the
// keepalive count is ignored and the kernel gives up at the first probe
// at least 5 s after the last segment received: idle + 4·intvl, as with
// cnt 4 (KERNEL-RULES §1).
var (
	recommendedPubSub = map[string]string{"idle": "1s", "intvl": "1s", "cnt": "4", "usertimeout": "5s"}
	recommendedBLPOP  = map[string]string{"idle": "1s", "intvl": "1s", "cnt": "4", "usertimeout": "5s", "maxretries": "-1"}
	// keepaliveOnlyBLPOP is the recommendation before the in-flight cells
	// were measured: it passes every idle cell, and never notices a dead
	// server while its BLPOP is unacknowledged.
	keepaliveOnlyBLPOP = map[string]string{"idle": "1s", "intvl": "1s", "cnt": "4", "maxretries": "-1"}
)

// inFlightBudget is how long an in-flight sample waits when theory says
// the kernel gives up only after tcp_retries2 (t1 + 928.5 s, KERNEL-RULES
// §2, §6): far longer than any keepalive rule (the defaults' 51 s), far
// shorter than the retransmission timer's 924 s budget. A decision within
// it would be a regression in the finding, not a pass.
const inFlightBudget = 60 * time.Second

// gateCase is one cell of the gate and what it must show.
type gateCase struct {
	name   string
	cell   gate.Cell
	expect []types.GomegaMatcher
}

// cases is the gate: each role with go-redis's defaults and with the
// recommended settings, against every fault; HALFOPEN_GATE_FOCUS (a
// regular expression) keeps only the cells whose names match.
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
			cell:   gate.Cell{Watcher: role, Peer: redisgate.ServiceName, Fault: fault, Samples: samples, Budget: budget, Config: cfg, Phase: phase},
			expect: expect,
		})
	}
	add := func(name, role string, cfg map[string]string, fault string, budget time.Duration, expect ...types.GomegaMatcher) {
		addPhase(tcprules.PhaseIdle, name, role, cfg, fault, budget, expect...)
	}
	silent := []string{"blackhole", "host-crash", "middlebox-state-loss"}
	// A disturbance is watched for this long after it heals (otherwise the
	// prediction's end, 51 s for the defaults): longer than the
	// recommended settings, or a BLPOP 1 s, take to drop a connection.
	tail := 15 * time.Second
	for _, role := range []string{redisgate.RoleBLPOP, redisgate.RolePubSub} {
		// Defaults: go-redis's own dialer keeps alive 30 s / 5 s / 3, so a
		// silent server is given up 45 s after the last segment; a rebooted
		// one answers the first probe, 30 s after it, with an RST. Either
		// way the call's error is EOF (RESP3 swallows the errno), and
		// go-redis dials again first: a BLPOP is retried on a new
		// connection, a subscription reconnected ("redial").
		gaveUp, rec, recGaveUp := "redial", recommendedBLPOP, "EOF"
		if role == redisgate.RolePubSub {
			rec, recGaveUp = recommendedPubSub, "redial"
		}
		for _, f := range silent {
			add("defaults", role, nil, f, 60*time.Second, gate.DetectWithin(52*time.Second), gate.GiveUpWith(gaveUp))
		}
		add("defaults", role, nil, "host-reboot:down=1s", 40*time.Second, gate.DetectWithin(35*time.Second), gate.GiveUpWith(gaveUp))
		add("defaults", role, nil, "router-restart:outage=2s", tail, gate.Survive())
		// Recommended: keepalive 1 s / 1 s / 4 and a 5 s user timeout:
		// [4, 5] s after the last segment; a BLPOP without retries returns
		// the EOF.
		for _, f := range silent {
			add("recommended", role, rec, f, 0, gate.DetectWithin(6500*time.Millisecond), gate.GiveUpWith(recGaveUp))
		}
		add("recommended", role, rec, "host-reboot:down=1s", 0, gate.DetectWithin(3500*time.Millisecond), gate.GiveUpWith(recGaveUp))
		add("recommended", role, rec, "router-restart:outage=2s", tail, gate.Survive())
	}
	// A BLPOP in flight: the fault lands while the BLPOP is unacknowledged
	// (before redis-server's delayed ACK), so keepalive never probes. With
	// the user timeout the kernel gives up at t1 + 5 s, t1 the first
	// retransmission 0.41 s after the BLPOP (KERNEL-RULES §2, §6): 5.4 s
	// after the fault, within the same 6.5 s as the idle cells. Without it
	// (go-redis's defaults, or keepalive alone) only tcp_retries2 ends the
	// wait, ~924 s later: never within the 60 s budget, the finding.
	// The finding is asserted sample by sample: every sample that met the
	// request in flight is censored, and every sample follows its own
	// forecast (a fault that came after the ACK, on a loaded machine, met
	// an idle connection and is held to the keepalive rule instead).
	finding := []types.GomegaMatcher{gate.FollowForecast(), gate.NeverDetectInPhase(tcprules.PhaseInFlight)}
	for _, f := range []string{"blackhole", "middlebox-state-loss"} {
		addPhase(tcprules.PhaseInFlight, "recommended", redisgate.RoleBLPOP, recommendedBLPOP, f, 0, gate.DetectWithin(6500*time.Millisecond), gate.GiveUpWith("EOF"))
		addPhase(tcprules.PhaseInFlight, "keepalive-only", redisgate.RoleBLPOP, keepaliveOnlyBLPOP, f, inFlightBudget, finding...)
	}
	addPhase(tcprules.PhaseInFlight, "defaults", redisgate.RoleBLPOP, nil, "blackhole", inFlightBudget, finding...)
	// A BLPOP with a timeout of 1 s in a loop, and go-redis's defaults: its
	// read deadline is the timeout + 10 s (cmdTimeout), so a silent server
	// is noticed 10–11 s after the fault, keepalive or not.
	blpop := map[string]string{"blpop": "1s"}
	add("blpop=1s", redisgate.RoleBLPOP, blpop, "blackhole", 0, gate.DetectWithin(12500*time.Millisecond), gate.GiveUpWith("i/o timeout"))
	add("blpop=1s", redisgate.RoleBLPOP, blpop, "router-restart:outage=2s", tail, gate.Survive())
	// ReadTimeout does not reach a blocking command (cmdTimeout gives BLPOP
	// 0 no deadline): with ReadTimeout 1 s a BLPOP still waits for the
	// default keepalive, 45 s.
	add("readtimeout=1s", redisgate.RoleBLPOP, map[string]string{"readtimeout": "1s"}, "blackhole", 60*time.Second,
		gate.DetectWithin(52*time.Second), gate.GiveUpWith("redial"))
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

var _ = Describe("go-redis v9.23.0 against redis-server 7.0", Ordered, ContinueOnFailure, Label("netns", "gates"), func() {
	all := cases()
	var results []*gate.Result

	// The cells are measured together, before the specs judge them one by
	// one: a cell with the defaults waits most of a minute.
	BeforeAll(func(ctx SpecContext) {
		cells := make([]gate.Cell, len(all))
		for i, c := range all {
			cells[i] = c.cell
		}
		var err error
		results, err = gate.RunAll(ctx, cells...)
		Expect(err).NotTo(HaveOccurred())
	}, NodeTimeout(15*time.Minute))

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
