package redisgate_test

import (
	"os"
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"

	redisgate "github.com/halfopen/halfopen/examples/gates/redis"
	"github.com/halfopen/halfopen/gate"
)

// TestMain dispatches the roles (the harness re-executes this test binary
// as them inside the lab); the report is suite-gates-redis.json, named
// after the module.
func TestMain(m *testing.M) { gate.Main(m) }

// TestRedisGate runs the gate; a filter chooses what is measured:
//
//	go tool ginkgo --label-filter='blpop && recommended && !in-flight' .
func TestRedisGate(t *testing.T) {
	gate.RunSpecs(t, "go-redis gate")
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

// entries is the gate: each role with go-redis's defaults and with the
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
		cell := gate.Cell{Watcher: role, Peer: redisgate.Server, Fault: fault, Samples: n, Budget: budget, Config: cfg, Phase: phase}
		out = append(out, gate.Entry(name, cell, append([]any{labels}, expect...)...))
	}
	// A disturbance is watched for this long after it heals (otherwise the
	// prediction's end, 51 s for the defaults): longer than the
	// recommended settings, or a BLPOP 1 s, take to drop a connection.
	tail := 15 * time.Second
	for _, r := range []struct {
		role  gate.Role
		label string
	}{{redisgate.BLPOP, "blpop"}, {redisgate.PubSub, "pubsub"}} {
		// Defaults: go-redis's own dialer keeps alive 30 s / 5 s / 3, so a
		// silent server is given up 45 s after the last segment; a rebooted
		// one answers the first probe, 30 s after it, with an RST. Either
		// way the call's error is EOF (RESP3 swallows the errno), and
		// go-redis dials again first: a BLPOP is retried on a new
		// connection, a subscription reconnected ("redial").
		gaveUp, rec, recGaveUp := "redial", recommendedBLPOP, "EOF"
		if r.role == redisgate.PubSub {
			rec, recGaveUp = recommendedPubSub, "redial"
		}
		for _, f := range silent {
			add(gate.PhaseIdle, "defaults", r.role, r.label, nil, f.fault, f.label, 60*time.Second, gate.DetectWithin(52*time.Second), gate.GiveUpWith(gaveUp))
		}
		add(gate.PhaseIdle, "defaults", r.role, r.label, nil, reboot, "host-reboot", 40*time.Second, gate.DetectWithin(35*time.Second), gate.GiveUpWith(gaveUp))
		add(gate.PhaseIdle, "defaults", r.role, r.label, nil, restart, "router-restart", tail, gate.Survive())
		// Recommended: keepalive 1 s / 1 s / 4 and a 5 s user timeout:
		// [4, 5] s after the last segment; a BLPOP without retries returns
		// the EOF.
		for _, f := range silent {
			add(gate.PhaseIdle, "recommended", r.role, r.label, rec, f.fault, f.label, 0, gate.DetectWithin(6500*time.Millisecond), gate.GiveUpWith(recGaveUp))
		}
		add(gate.PhaseIdle, "recommended", r.role, r.label, rec, reboot, "host-reboot", 0, gate.DetectWithin(3500*time.Millisecond), gate.GiveUpWith(recGaveUp))
		add(gate.PhaseIdle, "recommended", r.role, r.label, rec, restart, "router-restart", tail, gate.Survive())
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
	finding := []any{gate.FollowForecast(), gate.NeverDetectInPhase(gate.PhaseInFlight)}
	for _, f := range silent {
		if f.label == "host-crash" {
			continue
		}
		add(gate.PhaseInFlight, "recommended", redisgate.BLPOP, "blpop", recommendedBLPOP, f.fault, f.label, 0, gate.DetectWithin(6500*time.Millisecond), gate.GiveUpWith("EOF"))
		add(gate.PhaseInFlight, "keepalive-only", redisgate.BLPOP, "blpop", keepaliveOnlyBLPOP, f.fault, f.label, inFlightBudget, finding...)
	}
	add(gate.PhaseInFlight, "defaults", redisgate.BLPOP, "blpop", nil, gate.Blackhole(), "blackhole", inFlightBudget, finding...)
	// A BLPOP with a timeout of 1 s in a loop, and go-redis's defaults: its
	// read deadline is the timeout + 10 s (cmdTimeout), so a silent server
	// is noticed 10–11 s after the fault, keepalive or not.
	blpop := map[string]string{"blpop": "1s"}
	add(gate.PhaseIdle, "blpop-timeout", redisgate.BLPOP, "blpop", blpop, gate.Blackhole(), "blackhole", 0, gate.DetectWithin(12500*time.Millisecond), gate.GiveUpWith("i/o timeout"))
	add(gate.PhaseIdle, "blpop-timeout", redisgate.BLPOP, "blpop", blpop, restart, "router-restart", tail, gate.Survive())
	// ReadTimeout does not reach a blocking command (cmdTimeout gives BLPOP
	// 0 no deadline): with ReadTimeout 1 s a BLPOP still waits for the
	// default keepalive, 45 s.
	add(gate.PhaseIdle, "readtimeout", redisgate.BLPOP, "blpop", map[string]string{"readtimeout": "1s"}, gate.Blackhole(), "blackhole", 60*time.Second,
		gate.DetectWithin(52*time.Second), gate.GiveUpWith("redial"))
	// Two instants: go-redis gives up on its connection at the redial
	// (its keepalive, 45 s), marked; the application's BLPOP fails only
	// when MaxRetries redials of DialerRetries attempts of DialTimeout
	// (3 × (5 × 5 s + 4 × 100 ms) + back-offs) have failed too: [91, 129] s.
	add(gate.PhaseIdle, "decide-call", redisgate.BLPOP, "blpop", map[string]string{"decide": "call"}, gate.Blackhole(), "blackhole", 150*time.Second,
		gate.MarkWithin("redial", 52*time.Second), gate.DetectWithin(135*time.Second), gate.AgreeWithTheory())
	return out
}

// The gate: the entries a filter chooses are measured together (a cell
// with the defaults waits most of a minute), then each is judged as its
// own spec.
var _ = gate.DescribeTable("go-redis v9.23.0 against redis-server 7.0", Label("netns", "gates"), NodeTimeout(15*time.Minute), entries())
