// Package gate lets the author of a connection pool, an RPC client or a
// server gate their library on detection budgets from an ordinary Ginkgo
// suite in their own repository: "our client notices a dead server within
// 5 s, and never drops a healthy connection during a 2 s router restart".
// A gate imports gate and protocol (and, to predict, tcprules); never
// halfopen's harness.
//
//	[peer host: your server, a real one  ] ==veth== [router: the fault] ==veth== [watcher host: your client]
//	[ (Service), your role's own, or Echo]                                       [ (a Role)                 ]
//
// Each side runs as its own process inside its own network namespace: the
// test binary re-executed as a registered role, or a real server started
// unmodified. Every sample is a fresh lab.
//
// # The whole gate
//
// A role is your library in miniature: it dials (or lets your library
// dial) the peer, reports connected, and returns the moment your library
// gives up, with the reason. Register returns its handle; Service returns
// a real server's:
//
//	var (
//		client = gate.Register("my-client", protocol.Watcher{
//			Reasons: []string{"ETIMEDOUT", "ECONNRESET", "EOF"},
//			Kernel: func(protocol.Config) (*protocol.Kernel, error) {
//				return &protocol.Kernel{KeepIdle: time.Second, KeepIntvl: time.Second, KeepCnt: 3}, nil
//			},
//			Watch: func(ctx context.Context, s *protocol.Session) (string, error) {
//				conn, err := s.Connect(ctx) // or let your library dial s.Addr, then s.Connected()
//				if err != nil {
//					return "", err
//				}
//				_, err = mylib.Wrap(conn).WaitForever(ctx)
//				return protocol.Reason(err), nil
//			},
//		})
//		redis = gate.Service(gate.Server{Name: "redis", Path: "redis-server", Package: "redis-server",
//			Args: []string{"--bind", "{ip}", "--port", "{port}", "--save", ""}})
//	)
//
//	func TestMain(m *testing.M) { gate.Main(m) }
//
//	func TestGate(t *testing.T) { gate.RunSpecs(t, "mylib gate") }
//
//	var _ = gate.DescribeTable("mylib against redis", Label("gates"),
//		gate.Entry("notices a blackhole", gate.Cell{Watcher: client, Peer: redis, Fault: gate.Blackhole()},
//			Label("blackhole"), gate.DetectWithin(5*time.Second), gate.GiveUpWith("ETIMEDOUT")),
//		gate.Entry("survives a 2 s router restart", gate.Cell{Watcher: client, Peer: redis, Fault: gate.RouterRestart(2*time.Second)},
//			Label("router-restart"), gate.Survive()),
//	)
//
// That is all the wiring: Main dispatches the re-executed roles (and, run
// by an ordinary user, enters a user namespace of its own, or fails with
// one sentence saying what to enable); RunSpecs previews which entries
// Ginkgo's filters choose; the table measures those entries together in
// the harness's pool of labs, then judges each as a spec of its own.
//
// # Tables and filters
//
// DescribeTable is a Ginkgo container; each Entry is an It with its own
// labels, those given and those of its cell (the fault's name and family,
// the side, a Detector's name and family), so
//
//	go tool ginkgo --label-filter='blackhole' .
//	go test -run TestGate -args -ginkgo.focus='router restart'
//
// measure only the chosen entries (nothing else is measured), and a
// filter that chooses none fails the suite rather than pass unmeasured
// (unless its Suite allows an empty run). A spec is known by its node,
// never by its position: an entry's result is found by its name; its
// samples go to gmeasure under that name, one value per sample (the
// decision's duration, or a disturbance's false positives; shown under
// -v or when the spec fails), and to the suite's v1 report. A Claim is an
// entry that compares other entries' results, found by their names (a
// library against halfopen's own detector of the same strategy, a sweep
// of outages); choosing it measures what it reads. HALFOPEN_SHARD=i/n
// splits a table's chosen cells between n runs.
// Measure and MeasureAll measure cells from inside any Ginkgo spec; Run
// and RunAll do it from plain Go tests and programs.
//
// # Halfopen's detectors as watchers
//
// Detector makes one of halfopen's registered detectors the watcher, by
// its spec ("keepalive-tuned:idle=1s,intvl=1s,cnt=3", "read-eof",
// "external:cmd=./prog"): the strategy your library uses, measured beside
// it, or a suite of strategies (halfopen's own suites are gate tables of
// Detector cells). A spec that does not parse fails its cell, not the
// program.
//
// # Defaults
//
// Every Cell field but Watcher and Fault has a default, stated at the
// field: Peer Echo (halfopen's echo peer), Side SideClient, Samples
// DefaultSamples (3), Budget derived from the role's prediction (its end
// plus half of it, at least 1.5 s more; NeverBudget, 3 s, when the role
// predicts that it never decides; for a disturbance, the tail watched
// after it heals), Phase PhaseIdle (the fault a seeded time up to 1.5 s
// after the last exchange), Seed 0 (the harness's default seed: the same
// instants every run), Port 0 (the listening end uses the package's Port,
// 7000; a Server receives the cell's as {port}). Result.Budget and Result.String tell what a
// measured cell used.
//
// # Faults
//
// Faults are typed values: Blackhole, HostCrash, HostReboot(down),
// RouterRestart(outage), MiddleboxStateLoss(mode, scope), GracefulClose,
// AbortiveClose, ProcessKill, PeerCablePull, LocalCablePull, OneWay,
// RandomLoss, LongIdle; NewFault builds any registered fault by name, and
// ParseFault reads the string form ("router-restart:outage=2s") that gate
// files and the halfopen CLI take, with the same parser.
//
// # Verdicts
//
// DetectWithin, NeverDetect, Survive, GiveUpWith, AgreeWithTheory,
// FollowForecast and NeverDetectInPhase are Gomega matchers on a *Result;
// their failures name the cell and list every sample. Nothing passes
// unmeasured: a machine that cannot run a lab fails with the preflight's
// sentence, and a result with an errored or missing sample fails every
// matcher, negated or not.
//
// # Reports
//
// The suite's samples are written as they come to suite-gates-NAME.json in
// $HALFOPEN_REPORT_DIR (a temporary directory when unset), NAME the last
// element of the gate's module path (HALFOPEN_GATE_NAME overrides it; a
// Suite given to RunSpecs names it suite-REPORT.json and its profile),
// which `halfopen report`, `compare` and `budgets check` read. The report
// is closed, and read back, when the tests end; AddFrontier adds a point
// of the tolerance-against-detection frontier to it.
package gate
