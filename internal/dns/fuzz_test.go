package dns

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ztunnel-go/ztunnel/internal/metrics"
	"github.com/ztunnel-go/ztunnel/internal/state"
)

// recorder is a ResponseWriter that keeps what the handler writes.
type recorder struct {
	network string
	out     [][]byte
}

func (r *recorder) LocalAddr() net.Addr {
	if r.network == "tcp" {
		return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 15053}
	}
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 15053}
}
func (r *recorder) RemoteAddr() net.Addr { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353} }
func (r *recorder) Write(b []byte) (int, error) {
	r.out = append(r.out, append([]byte(nil), b...))
	return len(b), nil
}
func (r *recorder) WriteMsg(m *mdns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = r.Write(b)
	return err
}
func (r *recorder) Close() error        { return nil }
func (r *recorder) TsigStatus() error   { return nil }
func (r *recorder) TsigTimersOnly(bool) {}
func (r *recorder) Hijack()             {}

// serveBytes runs one packet through what the server does with it: miekg/dns's header
// check (our accept hook), its unpacking, then our handler; it returns the answers.
func serveBytes(s *Server, network string, b []byte) (*mdns.Msg, [][]byte) {
	w := &recorder{network: network}
	if len(b) < 12 {
		return nil, nil
	}
	var h mdns.Header
	h.Id, h.Bits = binary.BigEndian.Uint16(b), binary.BigEndian.Uint16(b[2:])
	h.Qdcount, h.Ancount = binary.BigEndian.Uint16(b[4:]), binary.BigEndian.Uint16(b[6:])
	h.Nscount, h.Arcount = binary.BigEndian.Uint16(b[8:]), binary.BigEndian.Uint16(b[10:])
	if s.accept(h) != mdns.MsgAccept {
		return nil, nil
	}
	req := new(mdns.Msg)
	if err := req.Unpack(b); err != nil {
		return nil, nil
	}
	(&handler{s: s, ctx: context.Background()}).ServeDNS(w, req)
	return req, w.out
}

func fuzzServer(t testing.TB) *Server {
	return New(Options{
		State: clientsStore(t), Mesh: testMesh(), Sockets: loopback{},
		Client:  func(s *state.Snapshot, src netip.Addr) *state.Workload { return s.WorkloadByAddr("", src) },
		Metrics: metrics.NewDNS(prometheus.NewRegistry()), History: NewHistory(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}) // no upstream: forwarded queries fail at once with SERVFAIL
}

// FuzzHandler feeds arbitrary packets to the handler: it must not panic, and whatever it
// answers must parse, carry the query's ID, be a response, and fit the client's UDP size.
func FuzzHandler(f *testing.F) {
	for _, q := range []*mdns.Msg{question("productpage.", mdns.TypeA), question("productpage.ns1.ns1.svc.cluster.local.", mdns.TypeA),
		question("headless.ns1.svc.cluster.local.", mdns.TypeAAAA), question("foo.wildcard.", mdns.TypeA), question("upstream.example.", mdns.TypeMX)} {
		b, _ := q.Pack()
		f.Add(b, false)
	}
	f.Add(longName(), true)
	s := fuzzServer(f)
	f.Fuzz(func(t *testing.T, b []byte, tcp bool) {
		network := map[bool]string{true: "tcp", false: "udp"}[tcp]
		req, outs := serveBytes(s, network, b)
		for _, out := range outs {
			m := new(mdns.Msg)
			if err := m.Unpack(out); err != nil {
				t.Fatalf("answer does not parse: %v", err)
			}
			if !m.Response || m.Id != binary.BigEndian.Uint16(b) {
				t.Fatalf("answer is not a response to id %d: %v", binary.BigEndian.Uint16(b), m)
			}
			if !tcp && len(out) > udpSize(req, mdns.MaxMsgSize) {
				t.Fatalf("%d-byte UDP answer for a %d-byte client", len(out), udpSize(req, mdns.MaxMsgSize))
			}
		}
	})
}
