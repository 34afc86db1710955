// Package examplegate is halfopen-gate.yaml, the gate file example, as a
// Go gate: the same Python keepalive watcher (a protocol v1 program) and
// Python's own HTTP server, the same cells and budgets, as one labelled
// table. Run it as root or as an ordinary user, all of it or a part:
//
//	go test -count=1 ./...
//	go tool ginkgo --label-filter='router-restart' .
package examplegate

import (
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"

	"github.com/halfopen/halfopen/gate"
)

var (
	// keepalive is the Python keepalive watcher (SO_KEEPALIVE,
	// TCP_KEEPIDLE/INTVL/CNT from its config), run as nobody.
	keepalive = gate.Program("../../python/keepalive_watcher.py", false)
	// http is Python's own HTTP server, unmodified, on the peer host: ready
	// when its port accepts a connection.
	http = gate.Service(gate.Server{Name: "http", Path: "python3", Package: "python3",
		Args: []string{"-m", "http.server", "--bind", "{ip}", "--directory", "{dir}", "{port}"}, ReadyTimeout: 20 * time.Second})
	// config is keepalive 1 s / 1 s / 3, in HALFOPEN_CONFIG.
	config = map[string]string{"idle": "1s", "intvl": "1s", "cnt": "3"}
)

func TestMain(m *testing.M) { gate.Main(m) }

func TestGate(t *testing.T) { gate.RunSpecs(t, "gate file example") }

// cell is the watcher against the server under fault, 3 samples.
func cell(f gate.Fault) gate.Cell {
	return gate.Cell{Watcher: keepalive, Peer: http, Fault: f, Config: config, Samples: 3}
}

var _ = gate.DescribeTable("python keepalive 1/1/3 against python3 -m http.server", Label("gates", "netns"),
	// keepalive 1/1/3 gives up after 3 unanswered probes: 3 to 4.5 s after
	// the fault, whatever the idle time before it (the probe timer's slack
	// included).
	gate.Entry("keepalive notices a blackhole", cell(gate.Blackhole()), Label("blackhole"), gate.DetectWithin(5*time.Second)),
	gate.Entry("keepalive notices a crashed host", cell(gate.HostCrash()), Label("host-crash"), gate.DetectWithin(5*time.Second)),
	// The rebooted host answers the next probe with RST (ECONNRESET, about
	// 1.7 s here). halfopen lets the host back onto the network only once
	// its service accepts again, so on a loaded machine a slow python3
	// start-up can keep it away until the third probe has gone unanswered
	// (ETIMEDOUT, about 4 s): the budget is the keepalive's own bound,
	// which either way holds.
	gate.Entry("keepalive notices a rebooted host", cell(gate.HostReboot(time.Second)), Label("host-reboot"), gate.DetectWithin(5*time.Second)),
	// A 1 s router restart costs at most two probes of three: never a
	// mistake.
	gate.Entry("keepalive survives a 1 s router restart", cell(gate.RouterRestart(time.Second)), Label("router-restart"), gate.Survive()),
)
