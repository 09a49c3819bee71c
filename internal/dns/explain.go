package dns

import (
	"net/netip"
	"strconv"
	"strings"

	mdns "github.com/miekg/dns"

	"github.com/ztunnel-go/ztunnel/internal/state"
)

// Explanation is what the DNS proxy would do with one query, and why: /debug/dns's
// answer and `ztunnel dns check`'s text.
type Explanation struct {
	Src    string `json:"src"`
	Client string `json:"client,omitempty"` // namespace/name of the asking workload
	Name   string `json:"name"`
	Type   string `json:"type"`
	// Result: "mesh" (answered from the state), "forward" (sent upstream) or "error"
	// (answered with Rcode without a lookup).
	Result    string   `json:"result"`
	Rcode     string   `json:"rcode,omitempty"`
	Reason    string   `json:"reason"`
	Matched   string   `json:"matched,omitempty"`
	Kind      string   `json:"kind,omitempty"`
	Key       string   `json:"key,omitempty"`
	Alias     string   `json:"alias,omitempty"`
	Cname     string   `json:"cname,omitempty"`
	Records   []string `json:"records,omitempty"`
	Tried     []string `json:"tried,omitempty"`
	Upstreams []string `json:"upstreams,omitempty"`
}

// Debug answers the admin server's questions about the DNS proxy.
type Debug struct {
	Mesh     *Mesh
	History  *History
	Upstream Upstream
	// Client finds the asking workload from a source address, as the servers do.
	Client func(snap *state.Snapshot, src netip.Addr) *state.Workload
}

// Recent is every client's latest queries.
func (d *Debug) Recent() map[string]ClientQueries { return d.History.Snapshot() }

// Explain runs the lookup a query from src would get, without sending anything.
func (d *Debug) Explain(snap *state.Snapshot, src netip.Addr, name string, qtype uint16) Explanation {
	e := Explanation{Src: src.String(), Name: mdns.Fqdn(name), Type: mdns.Type(qtype).String()}
	for _, u := range d.Upstream.Servers {
		e.Upstreams = append(e.Upstreams, u.String())
	}
	req := new(mdns.Msg)
	req.SetQuestion(e.Name, qtype)
	if reason, rcode := refuse(req, req.Question[0]); reason != "" {
		e.Result, e.Rcode, e.Reason = "error", mdns.RcodeToString[rcode], "refused: "+reason
		return e
	}
	client := d.Client(snap, src)
	if client == nil {
		e.Result, e.Rcode, e.Reason = "error", "SERVFAIL", "no workload has this source address"
		return e
	}
	e.Client = client.Namespace + "/" + client.Name
	if qtype != mdns.TypeA && qtype != mdns.TypeAAAA {
		e.Result, e.Reason = "forward", "only A and AAAA are answered from the mesh"
		return e
	}
	ans := d.Mesh.Lookup(snap, client, normalize(name), qtype, true)
	e.Tried = ans.Tried
	if !ans.Found {
		e.Result, e.Reason = "forward", "no service, ServiceEntry or pod hostname of the mesh matches, as "+client.Namespace+" sees it"
		return e
	}
	e.Result, e.Rcode, e.Matched, e.Kind, e.Key, e.Alias = "mesh", "NOERROR", ans.Host, ans.Kind, ans.Key, ans.Alias
	e.Reason = "matched " + ans.Kind + " " + ans.Key
	if len(ans.Addrs) == 0 {
		e.Reason += ", but " + ans.Empty + ": an empty answer"
		return e
	}
	if ans.Stripped != "" {
		e.Cname = mdns.Fqdn(ans.Stripped)
	}
	for _, a := range ans.Addrs {
		e.Records = append(e.Records, a.String())
	}
	return e
}

// ParseType reads a query type name (A, aaaa, SRV …) or number (TYPE65280 or 65280).
func ParseType(s string) (uint16, bool) {
	if t, ok := mdns.StringToType[strings.ToUpper(s)]; ok {
		return t, true
	}
	n, err := strconv.ParseUint(strings.TrimPrefix(strings.ToUpper(s), "TYPE"), 10, 16)
	return uint16(n), err == nil
}
