package ztest

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// FakeDNS is an upstream resolver for tests (kube-dns's place): a miekg/dns server on
// UDP and TCP that answers A and AAAA for the names it was given, NXDOMAIN with an SOA
// for the rest, and a TXT answer too large for 512 bytes for "big.example." (so UDP
// answers are truncated and the asker must retry over TCP). It records every question.
type FakeDNS struct {
	Addr    netip.AddrPort
	Records map[string][]string // fqdn, lowercase → IPs

	delay atomic.Int64 // nanoseconds to sleep before answering
	mu    sync.Mutex   // guards asked
	asked []Asked
}

// Asked is one question the fake received.
type Asked struct {
	Name     string
	Type     uint16
	Protocol string
	Src      netip.Addr // who asked
}

// ListenFakeDNS serves records on addr (port 0: any) of this namespace until the test ends.
func ListenFakeDNS(t testing.TB, addr string, records map[string][]string) *FakeDNS {
	t.Helper()
	for attempt := 1; ; attempt++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return ServeFakeDNS(t, pc, l, records)
		}
		pc.Close()
		// With port 0, the UDP port the kernel chose may be taken on TCP: try another.
		if !strings.HasSuffix(addr, ":0") || attempt == 10 {
			t.Fatal(err)
		}
	}
}

// ServeFakeDNS serves records on sockets the test opened (inside a netns, say).
func ServeFakeDNS(t testing.TB, pc net.PacketConn, l net.Listener, records map[string][]string) *FakeDNS {
	t.Helper()
	f := &FakeDNS{Addr: netip.MustParseAddrPort(pc.LocalAddr().String()), Records: map[string][]string{}}
	for k, v := range records {
		f.Records[strings.ToLower(mdns.Fqdn(k))] = v
	}
	var wg sync.WaitGroup
	servers := []*mdns.Server{{PacketConn: pc, Handler: f}, {Listener: l, Handler: f}}
	for _, s := range servers {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		wg.Go(func() { s.ActivateAndServe() })
		<-started
	}
	t.Cleanup(func() {
		for _, s := range servers {
			s.Shutdown()
		}
		wg.Wait()
	})
	return f
}

// SetDelay makes every later answer wait d (a slow upstream).
func (f *FakeDNS) SetDelay(d time.Duration) { f.delay.Store(int64(d)) }

// Asked returns the questions received so far.
func (f *FakeDNS) Asked() []Asked {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Asked(nil), f.asked...)
}

// ServeDNS answers one query.
func (f *FakeDNS) ServeDNS(w mdns.ResponseWriter, req *mdns.Msg) {
	q := req.Question[0]
	proto := "udp"
	if _, ok := w.LocalAddr().(*net.TCPAddr); ok {
		proto = "tcp"
	}
	f.mu.Lock()
	src, _ := netip.ParseAddrPort(w.RemoteAddr().String())
	f.asked = append(f.asked, Asked{Name: q.Name, Type: q.Qtype, Protocol: proto, Src: src.Addr()})
	f.mu.Unlock()
	time.Sleep(time.Duration(f.delay.Load()))
	m := new(mdns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	name := strings.ToLower(q.Name)
	switch ips, ok := f.Records[name]; {
	case name == "big.example." && q.Qtype == mdns.TypeTXT:
		for i := range 20 {
			m.Answer = append(m.Answer, &mdns.TXT{Hdr: mdns.RR_Header{Name: q.Name, Rrtype: mdns.TypeTXT, Class: mdns.ClassINET, Ttl: 60},
				Txt: []string{strings.Repeat(string(rune('a'+i)), 60)}})
		}
	case ok:
		for _, s := range ips {
			ip := netip.MustParseAddr(s)
			hdr := mdns.RR_Header{Name: q.Name, Class: mdns.ClassINET, Ttl: 60}
			switch {
			case ip.Is4() && q.Qtype == mdns.TypeA:
				hdr.Rrtype = mdns.TypeA
				m.Answer = append(m.Answer, &mdns.A{Hdr: hdr, A: ip.AsSlice()})
			case ip.Is6() && q.Qtype == mdns.TypeAAAA:
				hdr.Rrtype = mdns.TypeAAAA
				m.Answer = append(m.Answer, &mdns.AAAA{Hdr: hdr, AAAA: ip.AsSlice()})
			}
		}
	default:
		m.Rcode = mdns.RcodeNameError
		m.Ns = []mdns.RR{&mdns.SOA{Hdr: mdns.RR_Header{Name: "example.", Rrtype: mdns.TypeSOA, Class: mdns.ClassINET, Ttl: 60},
			Ns: "ns.example.", Mbox: "admin.example.", Serial: 1, Refresh: 60, Retry: 60, Expire: 60, Minttl: 30}}
	}
	if proto == "udp" {
		size := mdns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		m.Truncate(size)
	}
	w.WriteMsg(m)
}
