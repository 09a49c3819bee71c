package dns

import (
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"istio.io/istio/pkg/workloadapi"

	"github.com/ztunnel-go/ztunnel/internal/state"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// udpA are the labels of ns1/client's A queries over UDP.
var udpA = map[string]string{"request_protocol": "udp", "request_query_type": "a", "source_canonical_revision": "v1", "source_canonical_service": "client"}

// TestServerForwards: names the mesh does not know get the upstream's answer as the
// upstream wrote it (NXDOMAIN with its SOA too), under the client's ID, over UDP and TCP;
// other types than A/AAAA are forwarded even for mesh names (Rust).
func TestServerForwards(t *testing.T) {
	ztest.NoLeaks(t)
	ts := newTestServer(t, nil)
	for _, network := range []string{"udp", "tcp"} {
		q := question("upstream.example.", mdns.TypeA)
		r := ts.ask(t, network, "127.0.0.1", q)
		if got := rrStrings(r.Answer); r.Id != q.Id || !r.Authoritative || !equal(got, []string{"upstream.example.\t60\tIN\tA\t192.0.2.7"}) {
			t.Errorf("%s: forwarded answer id %d (sent %d) aa %v %q", network, r.Id, q.Id, r.Authoritative, got)
		}
		r = ts.ask(t, network, "127.0.0.1", question("nowhere.example.", mdns.TypeA))
		if r.Rcode != mdns.RcodeNameError || len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != mdns.TypeSOA {
			t.Errorf("%s: NXDOMAIN not passed through: rcode %d ns %v", network, r.Rcode, r.Ns)
		}
		r = ts.ask(t, network, "127.0.0.1", question("productpage.ns1.svc.cluster.local.", mdns.TypeTXT))
		if r.Rcode != mdns.RcodeNameError {
			t.Errorf("%s: TXT of a mesh name should be forwarded, got rcode %d", network, r.Rcode)
		}
	}
	if got := ztest.MetricValue(t, ts.reg, "istio_dns_upstream_requests_total", udpA); got != 2 {
		t.Errorf("upstream requests = %v, want 2", got)
	}
	if got := ztest.MetricValue(t, ts.reg, "istio_dns_upstream_request_duration_seconds", udpA); got != 2 {
		t.Errorf("upstream duration samples = %v, want 2", got)
	}
	if got := ztest.MetricValue(t, ts.reg, "istio_dns_upstream_failures_total", udpA); got != 0 {
		t.Errorf("an NXDOMAIN is an answer, not a failure: failures = %v", got)
	}
	h := ts.history.Snapshot()["lo/client"]
	if h.Workload != "ns1/client" || len(h.Queries) != 6 || h.Queries[0].Result != "forwarded" || h.Queries[0].Server != ts.upstream.Addr.String() {
		t.Errorf("history = %+v", h)
	}
}

// TestServerTruncation: an upstream answer larger than 512 bytes arrives truncated over
// UDP; ztunnel asks again over TCP, and hands a UDP client a truncated answer (TC) so
// that it retries over TCP, where it gets every record.
func TestServerTruncation(t *testing.T) {
	ztest.NoLeaks(t)
	ts := newTestServer(t, nil)
	r := ts.ask(t, "udp", "127.0.0.1", question("big.example.", mdns.TypeTXT))
	if !r.Truncated || len(r.Answer) >= 20 {
		t.Errorf("UDP answer: truncated %v with %d records", r.Truncated, len(r.Answer))
	}
	r = ts.ask(t, "tcp", "127.0.0.1", question("big.example.", mdns.TypeTXT))
	if r.Truncated || len(r.Answer) != 20 {
		t.Errorf("TCP answer: truncated %v with %d records", r.Truncated, len(r.Answer))
	}
	var protos []string
	for _, a := range ts.upstream.Asked() {
		protos = append(protos, a.Protocol)
	}
	if got := strings.Join(protos, ","); got != "udp,tcp,udp,tcp" {
		t.Errorf("upstream asked over %s, want udp,tcp per query", got)
	}
	q := question("big.example.", mdns.TypeTXT)
	q.SetEdns0(4096, false)
	if r = ts.ask(t, "udp", "127.0.0.1", q); r.Truncated || len(r.Answer) != 20 {
		t.Errorf("EDNS 4096 UDP answer: truncated %v with %d records", r.Truncated, len(r.Answer))
	}
}

// TestServerUpstreamDown: an upstream that never answers gives SERVFAIL after the
// timeout, counted as a failure; the mesh still answers meanwhile.
func TestServerUpstreamDown(t *testing.T) {
	ztest.NoLeaks(t)
	dead := ztest.ListenFakeDNS(t, "127.0.0.1:0", nil)
	dead.SetDelay(time.Second)
	ts := newTestServer(t, func(o *Options) {
		o.Upstream = Upstream{Servers: []netip.AddrPort{dead.Addr}, Timeout: 300 * time.Millisecond, Attempts: 2}
	})
	if r := ts.ask(t, "udp", "127.0.0.1", question("upstream.example.", mdns.TypeA)); r.Rcode != mdns.RcodeServerFailure {
		t.Errorf("rcode = %d, want SERVFAIL", r.Rcode)
	}
	if got := ztest.MetricValue(t, ts.reg, "istio_dns_upstream_failures_total", udpA); got != 1 {
		t.Errorf("failures = %v, want 1", got)
	}
	if n := len(dead.Asked()); n != 2 {
		t.Errorf("upstream asked %d times, want 2 (attempts)", n)
	}
	if r := ts.ask(t, "udp", "127.0.0.1", question("productpage.", mdns.TypeA)); len(r.Answer) != 1 {
		t.Errorf("mesh answer while upstream is down: %v", r.Answer)
	}
}

// TestServerUnknownClient: a source that is no workload gets SERVFAIL (Rust), counted
// with an unknown source.
func TestServerUnknownClient(t *testing.T) {
	ztest.NoLeaks(t)
	ts := newTestServer(t, nil)
	if r := ts.ask(t, "udp", "127.0.0.3", question("productpage.ns1.svc.cluster.local.", mdns.TypeA)); r.Rcode != mdns.RcodeServerFailure {
		t.Errorf("rcode = %d, want SERVFAIL", r.Rcode)
	}
	l := map[string]string{"request_protocol": "udp", "request_query_type": "a", "source_canonical_revision": "unknown", "source_canonical_service": "unknown"}
	if got := ztest.MetricValue(t, ts.reg, "istio_dns_requests_total", l); got != 1 {
		t.Errorf("requests{unknown} = %v", got)
	}
}

// TestServerFloodIsolation: a client flooding a slow upstream with names nobody knows
// holds at most MaxInFlight of them; the excess is refused at once (SERVFAIL, counted)
// and another client's forwarded query is still answered.
func TestServerFloodIsolation(t *testing.T) {
	ztest.NoLeaks(t)
	ts := newTestServer(t, func(o *Options) { o.MaxInFlight = 4 })
	ts.upstream.SetDelay(1500 * time.Millisecond)
	var wg sync.WaitGroup
	var mu sync.Mutex
	servfail := 0
	for range 40 {
		wg.Go(func() {
			r, err := ts.exchange("udp", "127.0.0.1", question("flood.example.", mdns.TypeA))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Error(err)
			} else if r.Rcode == mdns.RcodeServerFailure {
				servfail++
			}
		})
	}
	time.Sleep(100 * time.Millisecond) // the flood is in flight
	r := ts.ask(t, "udp", "127.0.0.2", question("upstream.example.", mdns.TypeA))
	wg.Wait()
	if len(r.Answer) != 1 {
		t.Errorf("the other client's query: rcode %d answers %v", r.Rcode, r.Answer)
	}
	if servfail < 36 || ztest.MetricValue(t, ts.reg, "ztunnel_dns_rejected_requests_total", map[string]string{"reason": "overload"}) != float64(servfail) {
		t.Errorf("%d of 40 refused (want ≥ 36, all counted)", servfail)
	}
}

// TestServerEDNS: the answer echoes the client's EDNS (size at least 512, DO bit), as
// Rust's response_edns does.
func TestServerEDNS(t *testing.T) {
	ztest.NoLeaks(t)
	ts := newTestServer(t, nil)
	q := question("productpage.", mdns.TypeA)
	q.SetEdns0(1232, true)
	r := ts.ask(t, "udp", "127.0.0.1", q)
	opt := r.IsEdns0()
	if opt == nil || opt.UDPSize() != 1232 || !opt.Do() || opt.Version() != 0 {
		t.Errorf("OPT = %v", opt)
	}
	q = question("productpage.", mdns.TypeA)
	q.SetEdns0(100, false)
	if opt := ts.ask(t, "udp", "127.0.0.1", q).IsEdns0(); opt == nil || opt.UDPSize() != 512 {
		t.Errorf("OPT for a 100-byte client = %v, want 512", opt)
	}
}

// TestServerWaitsForItsPod: a pod's first queries may beat its workload's xDS push; they
// wait for it (Rust's 5 s) holding an in-flight slot each, so that a flood meanwhile is
// refused at once; once the workload arrives the waiting queries are answered.
func TestServerWaitsForItsPod(t *testing.T) {
	ztest.NoLeaks(t)
	var store *state.Store
	ts := newTestServer(t, func(o *Options) {
		store, o.Key, o.MaxInFlight, o.ClientWait = o.State, "uid-late", 2, 5*time.Second
		o.Client = func(s *state.Snapshot, _ netip.Addr) *state.Workload { return s.WorkloadByName("ns1", "late") }
	})
	answers := make(chan *mdns.Msg, 2)
	for range 2 {
		go func() {
			r, err := ts.exchange("udp", "127.0.0.1", question("productpage.", mdns.TypeA))
			if err != nil {
				r = new(mdns.Msg) // no answer: reported below
			}
			answers <- r
		}()
	}
	ztest.Eventually(t, "two queries waiting", func() bool {
		ts.srv.fwd.mu.Lock()
		defer ts.srv.fwd.mu.Unlock()
		return ts.srv.fwd.inflight["uid-late"] == 2
	})
	if r := ts.ask(t, "udp", "127.0.0.1", question("productpage.", mdns.TypeA)); r.Rcode != mdns.RcodeServerFailure {
		t.Errorf("a third query while two wait: rcode %d, want SERVFAIL", r.Rcode)
	}
	store.Apply(state.Update{Addresses: []*workloadapi.Address{ztest.AsAddress(ztest.Workload("ns1", "late", "10.0.9.9"))}})
	for range 2 {
		if r := <-answers; len(r.Answer) != 1 {
			t.Errorf("a waiting query: rcode %d answers %v", r.Rcode, r.Answer)
		}
	}
}
