package dns

import (
	"context"
	"encoding/binary"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/ztunnel-go/ztunnel/internal/metrics"
	"github.com/ztunnel-go/ztunnel/internal/state"
)

// handler answers the queries of one running Server.
type handler struct {
	s   *Server
	ctx context.Context // Run's: cancelled on stop, ending upstream exchanges
}

// query is one request as it moves through the handler.
type query struct {
	req      *mdns.Msg
	w        mdns.ResponseWriter
	q        mdns.Question
	name     string // normalized
	protocol string // udp | tcp
	client   *state.Workload
	labels   metrics.DNSLabels
}

func (h *handler) ServeDNS(w mdns.ResponseWriter, req *mdns.Msg) {
	if len(req.Question) != 1 { // a header that promises a question the message lacks
		h.s.opts.Metrics.Rejected("question")
		m := new(mdns.Msg)
		m.SetRcodeFormatError(req)
		w.WriteMsg(m)
		return
	}
	qr := &query{req: req, w: w, q: req.Question[0], protocol: "udp"}
	if _, ok := w.LocalAddr().(*net.TCPAddr); ok {
		qr.protocol = "tcp"
	}
	qr.name = normalize(qr.q.Name)
	qr.labels = metrics.DNSLabels{QueryType: queryType(qr.q.Qtype), Protocol: qr.protocol}
	if reason, rcode := refuse(req, qr.q); reason != "" {
		h.s.opts.Metrics.Rejected(reason)
		h.fail(qr, rcode, "refused: "+reason)
		return
	}
	src, _ := netip.AddrFromSlice(addrIP(w.RemoteAddr()))
	qr.client = h.client(src.Unmap())
	if qr.client == nil {
		h.s.opts.Metrics.Request(qr.labels)
		h.fail(qr, mdns.RcodeServerFailure, "unknown source")
		return
	}
	qr.labels.CanonicalService, qr.labels.CanonicalRevision = qr.client.CanonicalName, qr.client.CanonicalRevision
	h.s.opts.Metrics.Request(qr.labels)
	if qr.q.Qtype == mdns.TypeA || qr.q.Qtype == mdns.TypeAAAA {
		snap := h.s.opts.State.Snapshot()
		if ans := h.s.opts.Mesh.Lookup(snap, qr.client, qr.name, qr.q.Qtype, false); ans.Found {
			h.answer(qr, &ans)
			return
		}
	}
	h.forward(qr)
}

// refuse checks what the lookup cannot serve, as the RFCs answer it: only the Internet
// class (NOTIMP otherwise, RFC 1035 §4.1.1); OPT, TSIG and TKEY are no questions
// (FORMERR, RFC 6891 §6.1.1, RFC 8945); zone transfers and MAILA/MAILB are not a stub
// proxy's business (NOTIMP); EDNS versions above 0 get BADVERS (RFC 6891 §6.1.3). Other
// types, known or not, are forwarded (RFC 3597), as Rust ztunnel does.
func refuse(req *mdns.Msg, q mdns.Question) (string, int) {
	switch {
	case q.Qclass != mdns.ClassINET:
		return "class", mdns.RcodeNotImplemented
	case q.Qtype == mdns.TypeOPT || q.Qtype == mdns.TypeTSIG || q.Qtype == mdns.TypeTKEY:
		return "type", mdns.RcodeFormatError
	case q.Qtype == mdns.TypeAXFR || q.Qtype == mdns.TypeIXFR || q.Qtype == mdns.TypeMAILA || q.Qtype == mdns.TypeMAILB:
		return "type", mdns.RcodeNotImplemented
	}
	if opt := req.IsEdns0(); opt != nil && opt.Version() != 0 {
		return "edns_version", mdns.RcodeBadVers
	}
	return "", 0
}

// client finds the asking workload, waiting up to ClientWait for the state to learn it.
// A waiting query holds one of the server's in-flight slots, so a flood from a pod the
// state does not know yet costs MaxInFlight goroutines, not one per packet.
func (h *handler) client(src netip.Addr) *state.Workload {
	var timeout <-chan time.Time
	for {
		snap := h.s.opts.State.Snapshot()
		if w := h.s.opts.Client(snap, src); w != nil || h.s.opts.ClientWait <= 0 {
			return w
		}
		if timeout == nil {
			if !h.s.fwd.acquire(h.s.opts.Key) {
				h.s.opts.Metrics.Rejected("overload")
				return nil
			}
			defer h.s.fwd.release(h.s.opts.Key)
			t := time.NewTimer(h.s.opts.ClientWait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-snap.Stale():
		case <-timeout:
			return nil
		case <-h.ctx.Done():
			return nil
		}
	}
}

// answer writes the mesh's authoritative answer: a CNAME first when the query carried a
// search domain, then the records, TTL 30 s; no records is NOERROR, not NXDOMAIN.
func (h *handler) answer(qr *query, ans *Answer) {
	m := h.reply(qr, mdns.RcodeSuccess)
	m.Authoritative = true
	owner := qr.q.Name
	cname := ""
	if ans.Stripped != "" && len(ans.Addrs) > 0 {
		cname = mdns.Fqdn(ans.Stripped)
		m.Answer = append(m.Answer, &mdns.CNAME{Hdr: rrHeader(owner, mdns.TypeCNAME), Target: cname})
		owner = cname
	}
	for _, ip := range ans.Addrs {
		if ip.Is4() {
			m.Answer = append(m.Answer, &mdns.A{Hdr: rrHeader(owner, mdns.TypeA), A: ip.AsSlice()})
		} else {
			m.Answer = append(m.Answer, &mdns.AAAA{Hdr: rrHeader(owner, mdns.TypeAAAA), AAAA: ip.AsSlice()})
		}
	}
	result := "mesh"
	if len(ans.Addrs) == 0 {
		result = "mesh: " + ans.Empty
	}
	h.write(qr, m)
	h.record(qr, Query{Result: result, Rcode: "NOERROR", Answers: len(m.Answer), Matched: ans.Host, Cname: cname})
}

func rrHeader(name string, t uint16) mdns.RR_Header {
	return mdns.RR_Header{Name: name, Rrtype: t, Class: mdns.ClassINET, Ttl: recordTTL}
}

// forward sends the query upstream and passes the answer back as received, under the
// client's ID; only an answer too large for the client's UDP size is re-packed, then
// truncated (TC set) so that the client retries over TCP.
func (h *handler) forward(qr *query) {
	key := h.s.opts.Key
	if key == "" {
		key = qr.client.Uid
	}
	if !h.s.fwd.acquire(key) {
		h.s.opts.Metrics.Rejected("overload")
		h.fail(qr, mdns.RcodeServerFailure, "refused: overload")
		return
	}
	start := time.Now()
	r, err := h.s.fwd.exchange(h.ctx, qr.req)
	h.s.fwd.release(key)
	h.s.opts.Metrics.Forwarded(qr.labels, time.Since(start), err != nil)
	if err != nil {
		h.s.log.Debug("DNS forwarding failed", "domain", qr.q.Name, "error", err)
		h.fail(qr, mdns.RcodeServerFailure, "forwarding failed")
		return
	}
	if qr.protocol == "udp" && len(r.raw) > udpSize(qr.req, mdns.MaxMsgSize) {
		r.msg.Id = qr.req.Id
		r.msg.Truncate(udpSize(qr.req, mdns.MaxMsgSize))
		h.write(qr, r.msg)
	} else {
		binary.BigEndian.PutUint16(r.raw, qr.req.Id)
		if _, err := qr.w.Write(r.raw); err != nil {
			h.s.log.Debug("DNS answer not sent", "error", err)
		}
	}
	h.record(qr, Query{Result: "forwarded", Rcode: mdns.RcodeToString[r.msg.Rcode], Answers: len(r.msg.Answer), Server: r.server.String()})
}

// reply starts an answer to qr: the question echoed, recursion available (we forward),
// and EDNS echoed when the client used it, with at least 512 bytes (Rust's
// response_edns).
func (h *handler) reply(qr *query, rcode int) *mdns.Msg {
	m := new(mdns.Msg)
	m.SetRcode(qr.req, rcode)
	m.RecursionAvailable = true
	if opt := qr.req.IsEdns0(); opt != nil {
		// Extended codes (BADVERS) go into this OPT record when m is packed.
		m.SetEdns0(uint16(max(int(opt.UDPSize()), mdns.MinMsgSize)), opt.Do())
	}
	return m
}

func (h *handler) fail(qr *query, rcode int, result string) {
	h.write(qr, h.reply(qr, rcode))
	h.record(qr, Query{Result: result, Rcode: mdns.RcodeToString[rcode]})
}

// write sends m, truncated to what a UDP client accepts.
func (h *handler) write(qr *query, m *mdns.Msg) {
	if qr.protocol == "udp" {
		m.Truncate(udpSize(qr.req, mdns.MaxMsgSize))
	}
	if err := qr.w.WriteMsg(m); err != nil {
		h.s.log.Debug("DNS answer not sent", "error", err)
	}
}

// record logs the query at debug (Rust's `dns` access log fields) and keeps it in the
// client's history for /debug/dns.
func (h *handler) record(qr *query, q Query) {
	q.Time, q.Name, q.Type, q.Protocol = time.Now(), qr.q.Name, mdns.Type(qr.q.Qtype).String(), qr.protocol
	wl, ns, key := "unknown", "unknown", h.s.opts.Key
	if c := qr.client; c != nil {
		wl, ns = c.Name, c.Namespace
		if key == "" {
			key = c.Uid
		}
	}
	if key != "" {
		h.s.opts.History.Record(key, ns+"/"+wl, q)
	}
	if h.s.log.Enabled(h.ctx, slog.LevelDebug) {
		h.s.log.Debug("dns query", "src.addr", qr.w.RemoteAddr().String(), "src.workload", wl, "src.namespace", ns,
			"query", q.Type, "domain", q.Name, "result", q.Result, "endpoints", q.Answers, "forwarded", q.Result == "forwarded")
	}
}

// queryType is the request_query_type label: the type's name in lowercase, as Rust
// writes it. Unassigned type numbers all count as "other", so that a client cycling
// through them cannot grow the metric without bound.
func queryType(t uint16) string {
	switch t {
	case mdns.TypeA:
		return "a"
	case mdns.TypeAAAA:
		return "aaaa"
	}
	if name, ok := mdns.TypeToString[t]; ok {
		return strings.ToLower(name)
	}
	return "other"
}

func addrIP(a net.Addr) net.IP {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.IP
	case *net.TCPAddr:
		return a.IP
	}
	return nil
}
