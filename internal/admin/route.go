package admin

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"

	"github.com/ztunnel-go/ztunnel/internal/route"
)

// RouteAnswer is /debug/route's JSON: where a connection from src to dst would go (as
// the proxy routes it, without dialling), or why it would be refused, and each
// decision on the way.
type RouteAnswer struct {
	Src       string   `json:"src"`
	Source    string   `json:"sourceWorkload,omitempty"`
	Dst       string   `json:"dst"`
	Kind      string   `json:"kind,omitempty"` // passthrough | direct | tunnel | waypoint | double-hbone
	Dial      string   `json:"dial,omitempty"`
	Authority string   `json:"authority,omitempty"`
	Service   string   `json:"service,omitempty"`
	Workload  string   `json:"workload,omitempty"`
	Expected  []string `json:"expectedIdentities,omitempty"`
	// Gateway and Inner, for double HBONE: the east-west gateway dialled (Expected are
	// its identities) and those the far end of the inner tunnel must prove.
	Gateway string   `json:"gateway,omitempty"`
	Inner   []string `json:"innerExpectedIdentities,omitempty"`
	Resolve string   `json:"resolveHostname,omitempty"`
	Refused string   `json:"refused,omitempty"`
	Why     []string `json:"why"`
}

const routeUsage = "usage: /debug/route?src=<ip>&dst=<ip:port>"

// route answers "where would src's connection to dst go?" over the current state, in
// node mode's terms (the source found by its address, on this node's network). A
// random choice (endpoint, weighted waypoint) is drawn as a connection would draw it.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	src, err1 := netip.ParseAddr(q.Get("src"))
	dst, err2 := netip.ParseAddrPort(q.Get("dst"))
	if err1 != nil || err2 != nil {
		http.Error(w, routeUsage, http.StatusBadRequest)
		return
	}
	snap := s.deps.State.Snapshot()
	router := route.Router{Network: s.deps.Config.Network, Explain: true}
	a := RouteAnswer{Src: src.String(), Dst: dst.String(), Why: []string{}}
	srcW := router.Source(snap, src.Unmap())
	if srcW == nil {
		a.Refused = "unknown source workload: no workload has " + src.String() + " on network " + fmt.Sprintf("%q", s.deps.Config.Network)
		writeJSON(w, a)
		return
	}
	a.Source = srcW.Namespace + "/" + srcW.Name
	pl, err := router.Outbound(snap, srcW, src.Unmap(), dst)
	a.Why = append(a.Why, pl.Why...)
	if err != nil {
		a.Refused = err.Error()
		writeJSON(w, a)
		return
	}
	a.describe(pl)
	writeJSON(w, a)
}

// describe fills in the plan's parts.
func (a *RouteAnswer) describe(pl route.Plan) {
	a.Kind, a.Authority, a.Resolve = pl.Kind.String(), pl.Authority, pl.Resolve
	if pl.Resolve == "" {
		a.Dial = pl.Dial.String()
	}
	if pl.Service != nil {
		a.Service = pl.Service.Key
	}
	if pl.Dst != nil {
		a.Workload = pl.Dst.Namespace + "/" + pl.Dst.Name
	}
	if pl.Gateway != nil {
		a.Gateway = pl.Gateway.Uid
	}
	for _, id := range pl.Expected {
		a.Expected = append(a.Expected, id.String())
	}
	for _, id := range pl.Inner {
		a.Inner = append(a.Inner, id.String())
	}
}

// RouteCommand is `ztunnel route check`: it asks a running ztunnel's /debug/route and
// prints the answer for people. Exit status: 0 routed, 3 refused, 2 usage or errors.
func RouteCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("route check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	src := fs.String("src", "", "source workload IP")
	dst := fs.String("dst", "", "original destination ip:port (a VIP or a pod IP)")
	addr := fs.String("admin", "127.0.0.1:15000", "ztunnel admin address")
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprintln(stderr, "usage: ztunnel route check --src <ip> --dst <ip:port> [--admin host:port]")
		return 2
	}
	if err := fs.Parse(args[1:]); err != nil || *src == "" || *dst == "" {
		fmt.Fprintln(stderr, "ztunnel route check: --src and --dst are required")
		return 2
	}
	var a RouteAnswer
	if err := getJSON("http://"+*addr+"/debug/route?"+url.Values{"src": {*src}, "dst": {*dst}}.Encode(), &a); err != nil {
		fmt.Fprintf(stderr, "ztunnel route check: %v\n", err)
		return 2
	}
	printRoute(stdout, a)
	if a.Refused != "" {
		return 3
	}
	return 0
}

func printRoute(w io.Writer, a RouteAnswer) {
	src := a.Src
	if a.Source != "" {
		src += " (" + a.Source + ")"
	}
	if a.Refused != "" {
		fmt.Fprintf(w, "REFUSED  %s -> %s\n  because: %s\n", src, a.Dst, a.Refused)
	} else {
		to := a.Dial
		if a.Resolve != "" {
			to = a.Resolve + " (resolved at connect time)"
		}
		fmt.Fprintf(w, "%s  %s -> %s via %s\n", a.Kind, src, a.Dst, to)
		for _, kv := range [][2]string{{"authority", a.Authority}, {"service", a.Service}, {"workload", a.Workload}, {"gateway", a.Gateway}} {
			if kv[1] != "" {
				fmt.Fprintf(w, "  %s: %s\n", kv[0], kv[1])
			}
		}
		if len(a.Expected) > 0 {
			fmt.Fprintf(w, "  expects the peer to be: %v\n", a.Expected)
		}
		if len(a.Inner) > 0 {
			fmt.Fprintf(w, "  expects the far end (inside the gateway's tunnel) to be: %v\n", a.Inner)
		}
	}
	if len(a.Why) > 0 {
		fmt.Fprintln(w, "  decisions:")
		for _, why := range a.Why {
			fmt.Fprintf(w, "    - %s\n", why)
		}
	}
}
