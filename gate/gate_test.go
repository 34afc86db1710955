package gate_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/halfopen/halfopen/gate"
	"github.com/halfopen/halfopen/protocol"
)

// keepaliveClient is a library's client in miniature: it dials, turns on
// TCP keepalive 1 s/1 s/3 and blocks in read; its read's error is the
// moment it gives up.
var keepaliveClient = protocol.Watcher{
	// [cnt·intvl, idle + cnt·intvl], the timer wheel late by up to 1/8.
	Predicted: &protocol.Range{Lo: 3 * time.Second, Hi: 4500 * time.Millisecond},
	Watch: func(ctx context.Context, s *protocol.Session) (string, error) {
		conn, err := s.Connect(ctx)
		if err != nil {
			return "", err
		}
		tc, ok := conn.(*net.TCPConn)
		if !ok {
			return "", errors.New("not TCP")
		}
		if err := tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: time.Second, Interval: time.Second, Count: 3}); err != nil {
			return "", err
		}
		buf := make([]byte, 1024)
		for {
			if _, err := conn.Read(buf); err != nil {
				return protocol.Reason(err), nil
			}
		}
	},
	Peer: protocol.Echo,
}

// The role and the real server the suite measures, as typed handles.
var (
	client     = gate.Register("keepalive-client", keepaliveClient)
	pythonHTTP = gate.Service(gate.Server{
		Name: "python-http", Path: "python3", Package: "python3",
		Args: []string{"-m", "http.server", "--bind", "{ip}", "--directory", "{dir}", "{port}"},
	})
)

func TestMain(m *testing.M) { gate.Main(m) }

func TestGate(t *testing.T) {
	gate.RunSpecs(t, "gate")
}

var _ = Describe("a library gated on real packets", Label("netns", "gates"), func() {
	It("notices a dead server within its keepalive budget, against halfopen's echo peer", func(ctx SpecContext) {
		res := gate.Measure(ctx, gate.Cell{Watcher: client, Fault: gate.Blackhole()})
		Expect(res).To(gate.DetectWithin(4500 * time.Millisecond))
		Expect(res).To(gate.GiveUpWith("ETIMEDOUT"))
	})

	It("notices a real server's host crash, and survives a 1 s router restart", func(ctx SpecContext) {
		Expect(gate.Measure(ctx, gate.Cell{Watcher: client, Peer: pythonHTTP, Fault: gate.HostCrash(), Samples: 2})).To(gate.DetectWithin(4500 * time.Millisecond))
		Expect(gate.Measure(ctx, gate.Cell{Watcher: client, Peer: gate.Self, Fault: gate.RouterRestart(time.Second), Samples: 2})).To(gate.Survive())
	})

	It("fails with a message that names the cell and its samples", func(ctx SpecContext) {
		res := gate.Measure(ctx, gate.Cell{Watcher: client, Fault: gate.Blackhole(), Samples: 1})
		m := gate.DetectWithin(time.Second)
		ok, err := m.Match(res)
		Expect(err).NotTo(HaveOccurred())
		Expect(ok).To(BeFalse(), "keepalive 1/1/3 cannot notice a blackhole within 1 s")
		msg := m.FailureMessage(res)
		Expect(msg).To(ContainSubstring("role:name=keepalive-client,peer=builtin × blackhole × client"))
		Expect(msg).To(MatchRegexp(`sample 0: \d\.\d{3}s ETIMEDOUT`))
		Expect(msg).To(ContainSubstring("p95 is"))
		Expect(gate.NeverDetect().Match(res)).To(BeFalse())
	})

	It("refuses bad input in one sentence", func(ctx SpecContext) {
		for _, tc := range []struct {
			cell gate.Cell
			want string
		}{
			{gate.Cell{Fault: gate.Blackhole()}, `the cell has no Watcher`},
			{gate.Cell{Watcher: client}, `the cell has no Fault`},
			{gate.Cell{Watcher: client, Fault: gate.Blackhole(), Config: map[string]string{"name": "x"}}, `config key "name" is taken by the cell itself`},
		} {
			_, err := gate.Run(ctx, tc.cell)
			Expect(err).To(MatchError(ContainSubstring(tc.want)))
			Expect(strings.Count(err.Error(), "\n")).To(BeZero())
		}
	})
})

// The gate as a table: each entry its own spec with its own labels, the
// entries a filter chooses measured together.
var _ = gate.DescribeTable("keepalive 1/1/3 as a table", Label("netns", "gates", "table"),
	gate.Entry("notices a blackhole", gate.Cell{Watcher: client, Fault: gate.Blackhole(), Samples: 2}, Label("blackhole"),
		gate.DetectWithin(4500*time.Millisecond), gate.GiveUpWith("ETIMEDOUT")),
	gate.Entry("notices a host crash", gate.Cell{Watcher: client, Fault: gate.HostCrash(), Samples: 2}, Label("host-crash"),
		gate.DetectWithin(4500*time.Millisecond)),
	gate.Entry("survives a 1 s router restart", gate.Cell{Watcher: client, Peer: gate.Self, Fault: gate.RouterRestart(time.Second), Samples: 2}, Label("router-restart"),
		gate.Survive(), func(r *gate.Result) {
			Expect(r.String()).To(ContainSubstring("a disturbance, watched"))
			Expect(r.Entry).To(Equal("survives a 1 s router restart"))
		}),
)

// A role against halfopen's own detector of the same strategy, as a claim
// over both entries' results, each found by its name.
var _ = gate.DescribeTable("keepalive 1/1/3, a role and halfopen's detector", Label("netns", "gates", "twin"),
	gate.Entry("the role", gate.Cell{Watcher: client, Fault: gate.Blackhole(), Samples: 2}, gate.DetectWithin(4500*time.Millisecond)),
	gate.Entry("keepalive-tuned", gate.Cell{Watcher: gate.Detector("keepalive-tuned:idle=1s,intvl=1s,cnt=3"), Fault: gate.Blackhole(), Samples: 2},
		gate.AgreeWithTheory(), gate.GiveUpWith("ETIMEDOUT"), func(r *gate.Result) {
			Expect(r.Describe).To(HavePrefix("keepalive-tuned:cnt=3,idle=1s,intvl=1s × blackhole × client"))
		}),
	gate.Claim("the role gives up when halfopen's detector does", []string{"the role", "keepalive-tuned"}, func(rs map[string]*gate.Result) {
		// Both wait for cnt·intvl unanswered probes after idle: [3, 4.5] s.
		Expect(rs["the role"].Fastest()).To(BeNumerically("~", rs["keepalive-tuned"].Fastest(), 1.5))
	}),
)

// A table with an entry whose detector does not parse, declared only in
// the re-executed suite of TestGateFailsUnmeasured: the bad entry fails
// alone, its neighbour is measured and passes.
var _ = func() bool {
	if os.Getenv("HALFOPEN_TEST_BAD_ENTRY") == "" {
		return false
	}
	return gate.DescribeTable("a bad entry among good ones", Label("netns", "bad-input"),
		gate.Entry("a misspelt detector", gate.Cell{Watcher: gate.Detector("no-such-detector:x=1"), Fault: gate.GracefulClose(), Samples: 1}, gate.AgreeWithTheory()),
		gate.Entry("read-eof sees a FIN", gate.Cell{Watcher: gate.Detector("read-eof"), Fault: gate.GracefulClose(), Samples: 1}, gate.AgreeWithTheory(), gate.GiveUpWith("EOF")),
	)
}()

// Example gates a client on a detection budget: the client role dials
// halfopen's echo peer, the router blackholes the path, and the client's
// keepalive gives up.
func Example() {
	res, err := gate.Run(context.Background(), gate.Cell{Watcher: client, Fault: gate.Blackhole(), Samples: 3})
	if err != nil {
		fmt.Println(err)
		return
	}
	ok, _ := gate.DetectWithin(4500 * time.Millisecond).Match(res)
	fmt.Println(res.Describe)
	fmt.Println("detected within 4.5 s at p95:", ok)
	// Output:
	// role:name=keepalive-client,peer=builtin × blackhole × client
	// detected within 4.5 s at p95: true
}
