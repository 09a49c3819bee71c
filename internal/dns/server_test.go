package dns

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ztunnel-go/ztunnel/internal/metrics"
	"github.com/ztunnel-go/ztunnel/internal/state"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// loopback creates the server's sockets in this namespace, as node mode does.
type loopback struct{}

func (loopback) Listen(ctx context.Context, a netip.AddrPort) (net.Listener, error) {
	var lc net.ListenConfig
	return lc.Listen(ctx, "tcp", a.String())
}

func (loopback) ListenPacket(ctx context.Context, a netip.AddrPort) (net.PacketConn, error) {
	var lc net.ListenConfig
	return lc.ListenPacket(ctx, "udp", a.String())
}

func (loopback) DialUDP(ctx context.Context, r netip.AddrPort) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "udp", r.String())
}

func (loopback) Dial(ctx context.Context, _ netip.Addr, r netip.AddrPort) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", r.String())
}

// The clients of the server tests are workloads at 127.0.0.1 (ns1/client) and
// 127.0.0.2 (ns2/other); the mesh is meshYAML's services.
const clientsYAML = `
- {uid: lo/client, name: client, namespace: ns1, workloadIps: ["127.0.0.1"], canonicalName: client, canonicalRevision: v1}
- {uid: lo/other, name: other, namespace: ns2, workloadIps: ["127.0.0.2"]}
`

// clientsStore is meshYAML's mesh with the loopback clients.
func clientsStore(t testing.TB) *state.Store {
	return testStore(t, strings.Replace(meshYAML, "workloads:\n", "workloads:"+clientsYAML, 1))
}

type testServer struct {
	srv      *Server
	udp, tcp string
	upstream *ztest.FakeDNS
	reg      *prometheus.Registry
	history  *History
}

func newTestServer(t *testing.T, tweak func(*Options)) *testServer {
	t.Helper()
	up := ztest.ListenFakeDNS(t, "127.0.0.1:0", map[string][]string{"upstream.example": {"192.0.2.7"}})
	store := clientsStore(t)
	ts := &testServer{upstream: up, reg: prometheus.NewRegistry(), history: NewHistory()}
	o := Options{
		Addrs:   []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")},
		Sockets: loopback{}, State: store, Mesh: testMesh(),
		Client:   func(s *state.Snapshot, src netip.Addr) *state.Workload { return s.WorkloadByAddr("", src) },
		Upstream: Upstream{Servers: []netip.AddrPort{up.Addr}, Timeout: 2 * time.Second, Attempts: 1},
		Metrics:  metrics.NewDNS(ts.reg), History: ts.history,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if tweak != nil {
		tweak(&o)
	}
	ts.srv = New(o)
	if err := ts.srv.Bind(context.Background()); err != nil {
		t.Fatal(err)
	}
	ts.udp, ts.tcp = ts.srv.Addrs()[0].String(), ts.srv.Addrs()[1].String()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { ts.srv.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return ts
}

// ask sends one query from src (127.0.0.1 or .2) over network and returns the answer.
func (ts *testServer) ask(t *testing.T, network, src string, m *mdns.Msg) *mdns.Msg {
	t.Helper()
	r, err := ts.exchange(network, src, m)
	if err != nil {
		t.Fatalf("%s query for %s: %v", network, m.Question[0].Name, err)
	}
	return r
}

// exchange is ask for other goroutines than the test's: it returns the error.
func (ts *testServer) exchange(network, src string, m *mdns.Msg) (*mdns.Msg, error) {
	addr := ts.udp
	var local net.Addr = &net.UDPAddr{IP: net.ParseIP(src)}
	if network == "tcp" {
		addr, local = ts.tcp, &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c := &mdns.Client{Net: network, Timeout: 5 * time.Second, Dialer: &net.Dialer{LocalAddr: local}}
	r, _, err := c.Exchange(m, addr)
	return r, err
}

func question(name string, qtype uint16) *mdns.Msg {
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	return m
}

func rrStrings(rrs []mdns.RR) []string {
	var out []string
	for _, rr := range rrs {
		out = append(out, rr.String())
	}
	return out
}

// TestServerAnswersTheMesh: a mesh name is answered authoritatively over UDP and TCP,
// with Rust's TTL and flags, and never reaches the upstream; a search-domain query gets
// the CNAME then the record (Rust's "cname+A record" case).
func TestServerAnswersTheMesh(t *testing.T) {
	ztest.NoLeaks(t)
	ts := newTestServer(t, nil)
	for _, network := range []string{"udp", "tcp"} {
		r := ts.ask(t, network, "127.0.0.1", question("productpage.ns1.svc.cluster.local.", mdns.TypeA))
		want := []string{"productpage.ns1.svc.cluster.local.\t30\tIN\tA\t9.9.9.9"}
		if got := rrStrings(r.Answer); r.Rcode != mdns.RcodeSuccess || !r.Authoritative || !r.RecursionAvailable || !equal(got, want) {
			t.Errorf("%s: rcode %d aa %v ra %v answers %q", network, r.Rcode, r.Authoritative, r.RecursionAvailable, got)
		}
		r = ts.ask(t, network, "127.0.0.1", question("productpage.ns1.ns1.svc.cluster.local.", mdns.TypeA))
		want = []string{"productpage.ns1.ns1.svc.cluster.local.\t30\tIN\tCNAME\tproductpage.ns1.", "productpage.ns1.\t30\tIN\tA\t9.9.9.9"}
		if got := rrStrings(r.Answer); !equal(got, want) {
			t.Errorf("%s: search-domain answer %q, want %q", network, got, want)
		}
		r = ts.ask(t, network, "127.0.0.1", question("ProductPage.NS1.", mdns.TypeAAAA))
		if r.Rcode != mdns.RcodeSuccess || len(r.Answer) != 0 || !r.Authoritative {
			t.Errorf("%s: AAAA of an IPv4-only service: rcode %d answers %v", network, r.Rcode, r.Answer)
		}
	}
	if asked := ts.upstream.Asked(); len(asked) != 0 {
		t.Errorf("mesh names reached the upstream: %v", asked)
	}
	if got := ztest.MetricValue(t, ts.reg, "istio_dns_requests_total", udpA); got != 2 {
		t.Errorf("istio_dns_requests_total%v = %v, want 2", udpA, got)
	}
}

func equal(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }
