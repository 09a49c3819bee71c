package admin_test

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/admin"
	"github.com/ztunnel-go/ztunnel/internal/dns"
	"github.com/ztunnel-go/ztunnel/internal/state"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// TestDebugDNS: /debug/dns lists recent queries, explains one from a source address, and
// says what is wrong with a bad request or a proxy that is off.
func TestDebugDNS(t *testing.T) {
	ztest.NoLeaks(t)
	f := newFixture(t)
	if code, body, _ := f.do("GET", "/debug/dns"); code != 503 || !strings.Contains(body, "ISTIO_META_DNS_CAPTURE") {
		t.Errorf("with the proxy off: %d %q", code, body)
	}
	hist := dns.NewHistory()
	hist.Record("uid-sleep", "foo/sleep", dns.Query{Time: time.Unix(0, 0), Name: "httpbin.default.", Type: "A", Result: "mesh"})
	f.srv = admin.New(admin.Deps{Config: f.cfg, State: f.store, Levels: f.levels, DNS: &dns.Debug{
		Mesh: &dns.Mesh{Domain: "cluster.local", IPv6: true}, History: hist,
		Upstream: dns.Upstream{Servers: []netip.AddrPort{netip.MustParseAddrPort("10.96.0.10:53")}},
		Client:   func(s *state.Snapshot, src netip.Addr) *state.Workload { return s.WorkloadByAddr("", src) },
	}})
	code, body, _ := f.do("GET", "/debug/dns")
	var recent map[string]dns.ClientQueries
	if json.Unmarshal([]byte(body), &recent); code != 200 || recent["uid-sleep"].Workload != "foo/sleep" || len(recent["uid-sleep"].Queries) != 1 {
		t.Errorf("recent: %d %s", code, body)
	}
	for _, tt := range []struct{ query, result, want string }{
		{"src=127.0.0.2&name=httpbin.default", "mesh", "127.0.10.1"},
		{"src=127.0.0.2&name=httpbin.default&type=AAAA", "mesh", "no records"},
		{"src=127.0.0.2&name=www.example.com&type=a", "forward", "10.96.0.10:53"},
		{"src=127.0.0.2&name=httpbin.default&type=MX", "forward", "only A and AAAA"},
		{"src=127.0.0.99&name=httpbin.default", "error", "no workload"},
		{"src=127.0.0.2&name=x&type=AXFR", "error", "refused: type"},
	} {
		code, body, _ := f.do("GET", "/debug/dns?"+tt.query)
		var e dns.Explanation
		if json.Unmarshal([]byte(body), &e); code != 200 || e.Result != tt.result || !strings.Contains(body, tt.want) {
			t.Errorf("%s: %d %s", tt.query, code, body)
		}
	}
	for _, q := range []string{"src=nope&name=a", "src=127.0.0.2", "src=127.0.0.2&name=a&type=NOTATYPE"} {
		if code, body, _ := f.do("GET", "/debug/dns?"+q); code != 400 || !strings.Contains(body, "usage") {
			t.Errorf("%s: %d %q", q, code, body)
		}
	}
}
