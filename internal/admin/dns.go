package admin

import (
	"encoding/json"
	"net/http"
	"net/netip"

	"github.com/ztunnel-go/ztunnel/internal/dns"
	"github.com/ztunnel-go/ztunnel/internal/state"
)

// DNSDebug is the DNS proxy as /debug/dns sees it.
type DNSDebug interface {
	Recent() map[string]dns.ClientQueries
	Explain(snap *state.Snapshot, src netip.Addr, name string, qtype uint16) dns.Explanation
}

const dnsUsage = "usage: /debug/dns (recent queries per pod), or /debug/dns?src=<ip>&name=<name>[&type=A]"

// dnsDebug shows each pod's recent queries and whether the mesh or upstream answered
// them, or, given a source and a name, what the proxy would answer and why.
func (s *Server) dnsDebug(w http.ResponseWriter, r *http.Request) {
	if s.deps.DNS == nil {
		http.Error(w, "the DNS proxy is off (ISTIO_META_DNS_CAPTURE)", http.StatusServiceUnavailable)
		return
	}
	q := r.URL.Query()
	var body any
	if !q.Has("src") && !q.Has("name") {
		body = s.deps.DNS.Recent()
	} else {
		src, err := netip.ParseAddr(q.Get("src"))
		qtype, ok := dns.ParseType(q.Get("type"))
		if q.Get("type") == "" {
			qtype, ok = 1, true // A
		}
		if err != nil || !ok || q.Get("name") == "" {
			http.Error(w, dnsUsage, http.StatusBadRequest)
			return
		}
		body = s.deps.DNS.Explain(s.deps.State.Snapshot(), src.Unmap(), q.Get("name"), qtype)
	}
	out, err := json.MarshalIndent(body, "", "  ")
	if err != nil {
		http.Error(w, "encoding: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(out, '\n'))
}
