package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/internal/agentcmd"
	"github.com/halfopen/halfopen/internal/topo"
	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/report"
)

// Toxiproxy on the router. With a toxiproxy-* fault chosen, Prepare starts
// the Toxiproxy v2.5.0 server embedded in the halfopen binary as an agent
// inside the router's namespace and puts the watched connection through a
// proxy on it; the dialing end dials the proxy, which dials the listener:
//
//	side=client: [watcher] --dial--> 198.18.2.1:7001 [router: toxiproxy] --dial--> 198.18.1.2:7000 [peer]
//	side=server: [peer]    --dial--> 198.18.1.1:7001 [router: toxiproxy] --dial--> 198.18.2.2:7000 [watcher]
//
// In Toxiproxy's words the dialing end is the client: "downstream" carries
// the listener's bytes to the dialing end, "upstream" the dialing end's
// bytes to the listener. So the stream toward the watcher is downstream
// for side=client and upstream for side=server, and that is every toxic's
// default stream here.
//
// The API listens on port 8474 (Toxiproxy's own default) on every address
// of the router's namespace (198.18.1.1, 198.18.2.1 and its loopback), so a
// user's own Toxiproxy client reaches it during a run from inside that
// namespace, e.g. `ip netns exec ho-<run>-<lab>-router toxiproxy-cli list`.
// The orchestrator uses the same REST API: Toxiproxy's Go client (package
// client) calls http.Get and http.Post on the default transport, which
// cannot be told which lab's namespace to dial into, so halfopen speaks the
// API with an http.Client per lab whose transport opens its sockets in that
// lab's router namespace (harness.Host.DialContext). Going through the HTTP
// API rather than commands on the agent's standard input proves, on every
// sample, the path a user's client takes.
//
// Through the proxy the watcher's TCP peer is the proxy's kernel, not the
// peer's: keepalive probes and retransmissions are answered by the router,
// so a kernel-level detector watches the proxy and cannot see the peer
// die behind it; only the proxy's own sockets can, and Toxiproxy's carry
// Go's default keepalive (15 s idle, 15 s interval, 9 probes: 150 s).
const (
	toxiproxyAPIPort = 8474
	toxiproxyPort    = 7001
	toxiproxyName    = "halfopen"
	envToxiproxyAPI  = "HALFOPEN_TOXIPROXY_API"
)

func init() {
	harness.RegisterAgent("toxiproxy", toxiproxyAgent)
}

// toxiproxyAgent runs the embedded Toxiproxy server until its standard
// input closes or it is told to stop. It prints "port" (its API address in
// msg) and "ready" once the API answers.
func toxiproxyAgent() error {
	addr := os.Getenv(envToxiproxyAPI)
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("toxiproxy agent: %s=%q is not host:port", envToxiproxyAPI, addr)
	}
	// Listen calls Fatal if it cannot bind: find out first, with a sentence.
	probe, err := net.Listen("tcp4", addr)
	if err != nil {
		return fmt.Errorf("toxiproxy agent: the API port is taken: %w", err)
	}
	probe.Close()
	logger := zerolog.New(os.Stderr).Level(zerolog.WarnLevel).With().Timestamp().Logger()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), logger)
	go srv.Listen(host, port)
	local := net.JoinHostPort("127.0.0.1", port)
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := c.Get("http://" + local + "/version")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("toxiproxy agent: the API on %s never answered: %v", addr, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	em := protocol.NewEmitter(os.Stdout)
	em.Emit(protocol.Event{Event: agentcmd.EventPort, Msg: addr})
	em.Emit(protocol.Event{Event: protocol.EventReady})
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	eof := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(eof)
	}()
	select {
	case <-stop:
	case <-eof:
	}
	return nil
}

// toxiproxyAPI speaks Toxiproxy's REST API inside one lab.
type toxiproxyAPI struct {
	base   string
	client *http.Client
}

// startToxiproxy starts the agent in the router and returns its API.
func startToxiproxy(ctx context.Context, lab *harness.Lab, conn *harness.Conn) (*toxiproxyAPI, error) {
	router := lab.Host(topo.Router)
	if router == nil {
		return nil, fmt.Errorf("host %s is gone", topo.Router)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this program to run Toxiproxy: %w", err)
	}
	api := netip.AddrPortFrom(topo.RouterWatcherAddr, toxiproxyAPIPort).String()
	p, err := router.Start(harness.AgentProc(exe, "toxiproxy",
		"HALFOPEN_AGENT=toxiproxy", envToxiproxyAPI+"="+net.JoinHostPort("0.0.0.0", strconv.Itoa(toxiproxyAPIPort))))
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := p.WaitEvent(wctx, protocol.EventReady); err != nil {
		return nil, fmt.Errorf("start toxiproxy: %w", err)
	}
	conn.Agents[topo.Router] = p
	tr := &http.Transport{DialContext: router.DialContext, DisableKeepAlives: true}
	return &toxiproxyAPI{base: "http://" + api, client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}, nil
}

// call sends one API request with a JSON body and checks the status.
func (a *toxiproxyAPI) call(ctx context.Context, method, path string, body any, want int) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("toxiproxy API %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != want {
		return fmt.Errorf("toxiproxy API %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// toxic is a toxic as the API takes it.
type toxic struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Stream     string         `json:"stream"`
	Toxicity   float64        `json:"toxicity"`
	Attributes map[string]any `json:"attributes"`
}

func (a *toxiproxyAPI) addToxic(ctx context.Context, t toxic) error {
	return a.call(ctx, http.MethodPost, "/proxies/"+toxiproxyName+"/toxics", t, http.StatusOK)
}

func (a *toxiproxyAPI) setToxicity(ctx context.Context, name string, toxicity float64) error {
	return a.call(ctx, http.MethodPost, "/proxies/"+toxiproxyName+"/toxics/"+name, map[string]any{"toxicity": toxicity}, http.StatusOK)
}

func (a *toxiproxyAPI) removeToxic(ctx context.Context, name string) error {
	return a.call(ctx, http.MethodDelete, "/proxies/"+toxiproxyName+"/toxics/"+name, nil, http.StatusNoContent)
}

func (a *toxiproxyAPI) setEnabled(ctx context.Context, enabled bool) error {
	return a.call(ctx, http.MethodPost, "/proxies/"+toxiproxyName, map[string]any{"enabled": enabled}, http.StatusOK)
}

// proxied is embedded in every toxiproxy fault: it puts the watched
// connection through the proxy and remembers each lab's proxy. A cell's
// one fault value serves all its samples, which run at once in different
// labs, so the state is kept per lab.
type proxied struct {
	mu   sync.Mutex
	labs map[*harness.Lab]*proxyState
}

// proxyState is the proxy of one lab.
type proxyState struct {
	api  *toxiproxyAPI
	side protocol.Side
	// listen and upstream are the proxy's addresses.
	listen, upstream netip.AddrPort
}

// state returns the lab's proxy, prepared or not (nil).
func (p *proxied) state(lab *harness.Lab) *proxyState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.labs[lab]
}

// Prepare starts Toxiproxy in the router and makes the proxy facing the
// dialing end; the dialing end then dials it (conn.Via).
func (p *proxied) Prepare(ctx context.Context, lab *harness.Lab, conn *harness.Conn) error {
	api, err := startToxiproxy(ctx, lab, conn)
	if err != nil {
		return err
	}
	st := &proxyState{api: api, side: conn.Side}
	st.listen = netip.AddrPortFrom(topo.RouterWatcherAddr, toxiproxyPort)
	st.upstream = netip.AddrPortFrom(topo.PeerAddr, conn.Port)
	if conn.Side == protocol.SideServer {
		st.listen = netip.AddrPortFrom(topo.RouterPeerAddr, toxiproxyPort)
		st.upstream = netip.AddrPortFrom(topo.WatcherAddr, conn.Port)
	}
	body := map[string]any{"name": toxiproxyName, "listen": st.listen.String(), "upstream": st.upstream.String(), "enabled": true}
	if err := api.call(ctx, http.MethodPost, "/proxies", body, http.StatusCreated); err != nil {
		return err
	}
	p.mu.Lock()
	if p.labs == nil {
		p.labs = map[*harness.Lab]*proxyState{}
	}
	p.labs[lab] = st
	p.mu.Unlock()
	lab.OnClose(func() error {
		p.mu.Lock()
		delete(p.labs, lab)
		p.mu.Unlock()
		return nil
	})
	conn.Via, conn.PathName = st.listen, topo.PathToxiproxy
	return nil
}

// prepared returns the lab's proxy, or an error if Prepare did not run.
func (p *proxied) prepared(lab *harness.Lab) (*proxyState, error) {
	st := p.state(lab)
	if st == nil {
		return nil, errNotPrepared
	}
	return st, nil
}

// towardWatcher is Toxiproxy's name for the stream carrying the peer's
// bytes to the watcher.
func (st *proxyState) towardWatcher() string {
	if st.side == protocol.SideServer {
		return "upstream"
	}
	return "downstream"
}

// stream returns the stream a toxic goes on: the one asked for, or the
// one toward the watcher.
func (st *proxyState) stream(asked string) string {
	if asked != "" {
		return asked
	}
	return st.towardWatcher()
}

// Note says what the watcher watches through the proxy.
func (p *proxied) Note(lab *harness.Lab, _ *harness.Conn) string {
	listen, upstream := "the router", "the listener"
	if st := p.state(lab); st != nil {
		listen, upstream = st.listen.String(), st.upstream.String()
	}
	return fmt.Sprintf("path: Toxiproxy v2.5.0 on the router (proxy %s → %s, API http://%s:%d); the watcher's TCP peer is the proxy's kernel, so keepalive and retransmissions are answered by the router, not the peer",
		listen, upstream, topo.RouterWatcherAddr, toxiproxyAPIPort)
}

// injectToxic adds a toxic on the asked stream (or the one toward the
// watcher) and returns the instant the API acknowledged it and a heal that
// removes it.
func (p *proxied) injectToxic(ctx context.Context, lab *harness.Lab, t toxic, stream string) (harness.Heal, int64, error) {
	st, err := p.prepared(lab)
	if err != nil {
		return nil, 0, err
	}
	t.Stream = st.stream(stream)
	// The proxy may act on the toxic before the API call returns (a
	// heart-beat passing through it): the instant is taken before the call,
	// as for a peer's own close, so that no decision precedes its fault.
	at := protocol.Now()
	if err := st.api.addToxic(ctx, t); err != nil {
		return nil, 0, err
	}
	return func(ctx context.Context) (int64, error) {
		err := st.api.removeToxic(ctx, t.Name)
		return protocol.Now(), err
	}, at, nil
}

// ms converts a duration to Toxiproxy's whole milliseconds.
func ms(d time.Duration) int64 { return d.Milliseconds() }

// peerSend has the peer send n bytes, to set off a toxic just armed on the
// stream toward the watcher. The watcher's own traffic (a heart-beat every
// 200 ms, a write probe) may set it off first, and then the proxy has
// closed or reset the peer's connection already: the peer's write fails
// with EPIPE or ECONNRESET, which the peer agent reports as text. The
// fault has happened then, at the instant it was armed: that is no error.
func peerSend(ctx context.Context, conn *harness.Conn, n int) error {
	p := conn.Agents[topo.Peer]
	if p == nil || p.Label != "peer" {
		return errNoPeerAgent
	}
	_, err := p.Request(ctx, agentcmd.Command{Cmd: agentcmd.CmdSend, Bytes: n, Seq: 1000}, agentcmd.EventSent)
	if err != nil && ctx.Err() == nil && (strings.Contains(err.Error(), syscall.EPIPE.Error()) || strings.Contains(err.Error(), syscall.ECONNRESET.Error())) {
		return nil
	}
	return err
}

// closeSlack bounds how long Toxiproxy takes to pass a close on to the
// watcher once its toxic decided (its link drains, then closes), with the
// peer's command round trip when the peer triggers it.
const closeSlack = 50 * time.Millisecond

// proxiedExpect is the theory of a path through the proxy. The watcher's
// kernel talks to the proxy's kernel, which stays alive, so a detector that
// decides only on kernel errors (every reason it predicts is an errno:
// keepalive, user timeout, a blocked read) sees a live peer and decides
// only when the proxy closes or resets the watcher's side; a detector that
// judges the peer's application (heart-beats) decides on its own timer
// when the peer's answers stop. When the proxy closes after closeAfter
// (closes is true), every detector sees that close within closeSlack.
func proxiedExpect(det harness.Detector, closes bool, closeAfter time.Duration, closeReasons []string, why string) (harness.Prediction, report.Expectation) {
	own := det.Predict()
	closeP := harness.Prediction{Lo: closeAfter, Hi: closeAfter + closeSlack, Reasons: closeReasons,
		Rule: why + "; the proxy then closes the watcher's side: the read returns within " + closeSlack.String()}
	if cp, ok := det.(harness.ClosePredictor); ok {
		// A detector that polls sees the close at its next poll.
		pc := cp.PredictClose(harness.EffectFINOrRST)
		closeP = harness.Prediction{Lo: closeAfter + pc.Lo, Hi: closeAfter + pc.Hi + closeSlack, Reasons: pc.Reasons,
			Rule: why + "; the proxy then closes the watcher's side: " + pc.Rule}
	}
	if _, foreign := det.(harness.Program); foreign && !closes {
		// Whether a foreign program's timer is the kernel's (blind behind
		// the proxy) or its own heart-beat's, theory cannot tell.
		own.Rule = why + "; a foreign program's timer may be the kernel's, which the proxy answers, or its own, which the peer's silence stops: theory cannot tell which; " + own.Rule
		return own, report.ExpectUnknown
	}
	if kernelOnly(own) {
		if closes {
			return closeP, report.ExpectDetect
		}
		return harness.Prediction{Never: true, Rule: why + "; the proxy's kernel answers every probe and acknowledges every byte, so a kernel-level detector never decides"}, report.ExpectNever
	}
	if !closes || own.Hi <= closeAfter {
		own.Rule = why + "; the peer's answers stop and the detector's own timer decides: " + own.Rule
		return own, report.ExpectDetect
	}
	if closeP.Hi <= own.Lo {
		return closeP, report.ExpectDetect
	}
	out := harness.Prediction{Lo: min(own.Lo, closeP.Lo), Hi: min(own.Hi, closeP.Hi), Reasons: append(append([]string(nil), own.Reasons...), closeReasons...),
		Rule: why + "; the detector's own timer or the proxy's close, whichever comes first: " + own.Rule}
	return out, report.ExpectDetect
}

// kernelOnly says whether every reason a detector predicts is an errno
// name (ETIMEDOUT, ECONNRESET...): its evidence is the kernel's, which a
// proxy answers for.
func kernelOnly(p harness.Prediction) bool {
	for _, r := range p.Reasons {
		if len(r) < 2 || r[0] != 'E' || strings.ToUpper(r) != r {
			return false
		}
	}
	return true
}

var (
	errNotPrepared    = errors.New("toxiproxy was not prepared: the fault's Prepare did not run")
	errSliceVariation = errors.New("size_variation must be smaller than average_size")
)
