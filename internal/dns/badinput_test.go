package dns

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// packet packs m, for the cases that are valid wire format.
func packet(t *testing.T, m *mdns.Msg) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// longName is a query whose name has 321 octets on the wire: over RFC 1035's 255.
func longName() []byte {
	b := []byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0} // id, RD, one question
	for range 5 {
		b = append(b, 63)
		b = append(b, strings.Repeat("a", 63)...)
	}
	return append(b, 0, 0, 1, 0, 1)
}

// exchangeRaw sends b over UDP from 127.0.0.1 and returns the answer, or nil when none
// comes within a short wait (an answer to nonsense is never late: it is not sent).
func exchangeRaw(t *testing.T, addr string, b []byte) *mdns.Msg {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	m := new(mdns.Msg)
	if err := m.Unpack(buf[:n]); err != nil {
		t.Fatalf("the answer does not parse: %v", err)
	}
	return m
}

// TestBadInput sends what no resolver should send. Each gets the answer the RFCs give
// it (or none, where answering could amplify or loop), is counted by reason, and the
// server answers a good query right after.
func TestBadInput(t *testing.T) {
	ztest.NoLeaks(t)
	ts := newTestServer(t, nil)
	two := question("productpage.", mdns.TypeA)
	two.Question = append(two.Question, two.Question[0])
	chaos := question("version.bind.", mdns.TypeTXT)
	chaos.Question[0].Qclass = mdns.ClassCHAOS
	edns1 := question("productpage.", mdns.TypeA)
	edns1.SetEdns0(1232, false)
	edns1.IsEdns0().SetVersion(1)
	update := question("productpage.", mdns.TypeA)
	update.Opcode = mdns.OpcodeUpdate
	notify := question("productpage.", mdns.TypeSOA)
	notify.Opcode = mdns.OpcodeNotify
	response := question("productpage.", mdns.TypeA)
	response.Response = true
	tests := []struct {
		name   string
		b      []byte
		rcode  int // -1: no answer at all
		reason string
	}{
		{"shorter than a header", []byte{1, 2, 3, 4, 5}, -1, "malformed"},
		{"garbage after the header", []byte{0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff}, mdns.RcodeFormatError, "malformed"},
		{"name over 255 octets", longName(), mdns.RcodeFormatError, "malformed"},
		{"two questions", packet(t, two), mdns.RcodeFormatError, "question"},
		{"a question the message lacks", []byte{0x30, 0x30, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0}, mdns.RcodeFormatError, "question"}, // found by FuzzHandler
		{"class CHAOS", packet(t, chaos), mdns.RcodeNotImplemented, "class"},
		{"zone transfer", packet(t, question("ns1.svc.cluster.local.", mdns.TypeAXFR)), mdns.RcodeNotImplemented, "type"},
		{"OPT as the question", packet(t, question("productpage.", mdns.TypeOPT)), mdns.RcodeFormatError, "type"},
		{"EDNS version 1", packet(t, edns1), mdns.RcodeBadVers, "edns_version"},
		{"opcode UPDATE", packet(t, update), mdns.RcodeNotImplemented, "opcode"},
		{"opcode NOTIFY", packet(t, notify), mdns.RcodeNotImplemented, "opcode"},
		{"a response sent as a query", packet(t, response), -1, "not_query"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := ztest.MetricValue(t, ts.reg, "ztunnel_dns_rejected_requests_total", map[string]string{"reason": tt.reason})
			r := exchangeRaw(t, ts.udp, tt.b)
			switch {
			case tt.rcode < 0 && r != nil:
				t.Errorf("answered %v; want silence", r)
			case tt.rcode >= 0 && r == nil:
				t.Errorf("no answer; want %s", mdns.RcodeToString[tt.rcode])
			case r != nil && (r.Rcode != tt.rcode || !r.Response || r.Id != binary.BigEndian.Uint16(tt.b)):
				t.Errorf("answer rcode %s id %d; want %s", mdns.RcodeToString[r.Rcode], r.Id, mdns.RcodeToString[tt.rcode])
			}
			if got := ztest.MetricValue(t, ts.reg, "ztunnel_dns_rejected_requests_total", map[string]string{"reason": tt.reason}); got != before+1 {
				t.Errorf("rejected{%s} went %v → %v", tt.reason, before, got)
			}
			if r := ts.ask(t, "udp", "127.0.0.1", question("productpage.", mdns.TypeA)); len(r.Answer) != 1 {
				t.Errorf("a good query after it: %v", r)
			}
		})
	}
	if n := len(ts.upstream.Asked()); n != 0 {
		t.Errorf("bad input reached the upstream %d times", n)
	}
}

// TestTCPStall: a TCP client that sends a length and then nothing is disconnected when
// the request timeout passes (Rust's 5 s; shortened here), and counted; one that sends
// nothing at all is disconnected too, but is no stall.
func TestTCPStall(t *testing.T) {
	ztest.NoLeaks(t)
	ts := newTestServer(t, func(o *Options) { o.TCPTimeout = 200 * time.Millisecond })
	for _, tt := range []struct {
		name   string
		send   []byte
		counts float64
	}{{"length then silence", []byte{0, 40}, 1}, {"half a message", []byte{0, 40, 1, 2, 3}, 1}, {"silence", nil, 0}} {
		t.Run(tt.name, func(t *testing.T) {
			before := ztest.MetricValue(t, ts.reg, "ztunnel_dns_rejected_requests_total", map[string]string{"reason": "tcp_stalled"})
			c, err := net.Dial("tcp", ts.tcp)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write(tt.send)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if n, err := c.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("read %d, %v; want the server to close the connection", n, err)
			}
			ztest.Eventually(t, "stall counted", func() bool {
				return ztest.MetricValue(t, ts.reg, "ztunnel_dns_rejected_requests_total", map[string]string{"reason": "tcp_stalled"}) == before+tt.counts
			})
			if r := ts.ask(t, "tcp", "127.0.0.1", question("productpage.", mdns.TypeA)); len(r.Answer) != 1 {
				t.Errorf("a good TCP query after it: %v", r)
			}
		})
	}
}
