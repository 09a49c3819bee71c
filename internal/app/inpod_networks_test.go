//go:build linux

package app_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	"istio.io/istio/pkg/workloadapi"
	"istio.io/istio/pkg/workloadapi/security"

	"github.com/ztunnel-go/ztunnel/internal/admin"
	"github.com/ztunnel-go/ztunnel/internal/config"
	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/state"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// The two networks of TestInPodNetworks. Node 1 (net-a) and node 2 (net-b) run a
// ztunnel each; node 3 is net-a's east-west gateway, node 4 net-b's. Each node is
// linked to both gateways and to nothing else, so no pod of one network has a route
// to a pod of the other: only the gateways' addresses are reachable across.
const (
	gwA, gwB  = "10.70.3.1", "10.70.4.1"
	echoVIP   = "10.96.0.10"
	webVIP    = "10.96.0.20"
	echoHost  = "echo.default.svc.cluster.local"
	echoSAN   = "spiffe://cluster.local/ns/default/sa/echo"
	gwSA      = "istio-eastwestgateway"
	proxyPort = 15088
)

type networksBed struct {
	pods  map[string]*ztest.BedPod
	nodes [3]*ztNode
	gws   map[string]*ztest.EastWestGateway
}

func newNetworksBed(t *testing.T) *networksBed {
	bed := ztest.NewBed(t)
	n1, n2, n3, n4 := bed.Node(1), bed.Node(2), bed.Node(3), bed.Node(4)
	bed.Link(n1, n3)
	bed.Link(n1, n4)
	bed.Link(n2, n3)
	bed.Link(n2, n4)
	b := &networksBed{pods: map[string]*ztest.BedPod{}, gws: map[string]*ztest.EastWestGateway{}}
	for _, p := range []*ztest.BedPod{n1.Pod("client", true), n1.Pod("intruder", true), n1.Pod("prom", true),
		n1.Pod("sandwich", true), n1.Pod("plain", false), n1.Pod("web", true), n2.Pod("server", true)} {
		b.pods[p.Name] = p
	}
	b.pods["server"].ServeWhoami(t, 8080)
	b.pods["web"].ServeWhoami(t, 8080)
	ca, dir := ztest.NewFakeCA(t), t.TempDir()
	gwCert, err := ca.CA.Fetch(context.Background(), identity.New("cluster.local", "istio-system", gwSA))
	if err != nil {
		t.Fatal(err)
	}
	// The gateways first: they stop last, after the ztunnels' pools have let go.
	for _, g := range []struct {
		node    *ztest.BedNode
		ip, net string
		view    []*workloadapi.Address
	}{{n3, gwA, "net-a", gwAView()}, {n4, gwB, "net-b", gwBView()}} {
		var l net.Listener
		if err := g.node.Do(func() (err error) { l, err = net.Listen("tcp", g.ip+":15008"); return err }); err != nil {
			t.Fatal(err)
		}
		store := state.NewStore()
		store.Apply(state.Update{Addresses: g.view})
		b.gws[g.net] = ztest.ServeEastWestGateway(t, l, ztest.GatewayOptions{Network: g.net, State: store, Dial: g.node.Dial, Cert: gwCert})
	}
	for i, n := range []*ztest.BedNode{n1, n2} {
		idx := i + 1
		cni := ztest.NewFakeCNI(t, filepath.Join(dir, fmt.Sprintf("zds-%d.sock", idx)))
		for _, p := range b.pods {
			if p.Node == n && p.Name != "plain" {
				cni.AddPod("uid-"+p.Name, podNS(p.Name), p.Name, p.Name, p.Path)
			}
		}
		env := []string{"INPOD_ENABLED=true", "INPOD_UDS=" + cni.Path, "LOCAL_XDS=workloads: []\n", "XDS_ADDRESS=",
			"CA_ADDRESS=" + ca.Address, "CA_ROOT_CA=" + ca.ServePEM, "AUTH_TOKEN=token", "IPV6_ENABLED=false",
			fmt.Sprintf("NODE_NAME=n%d", idx), "NETWORK=net-" + string(rune('a'+i)), "RUST_LOG=debug",
			fmt.Sprintf("POD_NAME=ztunnel-n%d", idx), "POD_NAMESPACE=istio-system", "SERVICE_ACCOUNT=ztunnel"}
		b.nodes[idx] = startZtunnel(t, idx, env, func(c *config.Config) { c.SelfNetns = "/var/run/netns/" + n.NS })
	}
	apply(t, b.nodes[1], state.Update{Addresses: netAView()})
	apply(t, b.nodes[2], state.Update{Addresses: netBView(), Policies: []*security.Authorization{allowClient}})
	return b
}

func podNS(pod string) string {
	switch pod {
	case "client", "intruder":
		return "foo"
	case "prom":
		return "monitoring"
	}
	return "default"
}

func apply(t *testing.T, n *ztNode, u state.Update) {
	t.Helper()
	if errs := n.app.State().Apply(u); len(errs) > 0 {
		t.Fatal(errs)
	}
}

// TestInPodNetworks shows multi-network ambient end to end (Rust
// build_request_through_gateway, proxy_to_double_hbone, the inbound's from_gateway,
// write_proxy_protocol, create_ztunnel_self_proxy_listener).
func TestInPodNetworks(t *testing.T) {
	ztest.NoLeaks(t)
	b := newNetworksBed(t)
	client := b.pods["client"]

	t.Run("no route between the networks' pods", func(t *testing.T) {
		if c, err := b.pods["plain"].Dial("10.70.2.10:8080"); err == nil {
			c.Close()
			t.Fatal("a pod outside the mesh on net-a reached net-b's server directly")
		}
	})
	t.Run("by service VIP, through net-b's gateway", func(t *testing.T) {
		if server, _, err := ask(t, client, echoVIP+":80"); err != nil || server != "10.70.2.10:8080" {
			t.Fatalf("client → echo VIP: %q, %v; want net-b's server", server, err)
		}
		wantForward(t, b.gws["net-b"], echoHost+":80")
		var a admin.RouteAnswer
		getJSON(t, b.nodes[1], "/debug/route?src=10.70.1.10&dst="+echoVIP+":80", &a)
		if a.Kind != "double-hbone" || a.Dial != gwB+":15008" || a.Gateway != "NetworkGateway/net-b/"+gwB ||
			len(a.Inner) != 1 || a.Inner[0] != echoSAN || a.Authority != echoHost+":80" {
			t.Fatalf("/debug/route: %+v", a)
		}
	})
	t.Run("by pod IP, through net-b's gateway", func(t *testing.T) {
		if server, _, err := ask(t, client, "10.70.2.10:8080"); err != nil || server != "10.70.2.10:8080" {
			t.Fatalf("client → server pod IP: %q, %v", server, err)
		}
		wantForward(t, b.gws["net-b"], "10.70.2.10:8080")
	})
	t.Run("the other way: net-b reaches net-a's web through gw-a", func(t *testing.T) {
		if server, _, err := ask(t, b.pods["server"], webVIP+":80"); err != nil || server != "10.70.1.15:8080" {
			t.Fatalf("server → web VIP: %q, %v; want net-a's web", server, err)
		}
		for _, f := range b.gws["net-a"].Forwards() {
			if f.Authority == "web.default.svc.cluster.local:80" && f.To.String() == "10.70.1.15:15008" {
				return
			}
		}
		t.Fatalf("gw-a forwarded %+v", b.gws["net-a"].Forwards())
	})
	t.Run("the destination authorizes the inner peer's identity", func(t *testing.T) {
		if server, _, err := ask(t, b.pods["intruder"], echoVIP+":80"); err == nil {
			t.Fatalf("intruder reached %q through the gateway; the server allows only foo/client", server)
		}
		ztest.Eventually(t, "the denial logged on net-b", func() bool {
			logs := b.nodes[2].logs.String()
			return strings.Contains(logs, "peer_id=spiffe://cluster.local/ns/foo/sa/intruder") && strings.Contains(logs, "denied by authorization policy")
		})
	})
	t.Run("the destination's metrics name the real source", func(t *testing.T) {
		want := `reporter="destination"`
		ztest.Eventually(t, "net-b's server counts client's connections", func() bool {
			for _, line := range strings.Split(scrape(t, b.nodes[2]), "\n") {
				if strings.HasPrefix(line, "istio_tcp_connections_opened_total{") && strings.Contains(line, want) &&
					strings.Contains(line, `source_workload="client"`) && strings.Contains(line, `source_workload_namespace="foo"`) &&
					strings.Contains(line, `source_principal="spiffe://cluster.local/ns/foo/sa/client"`) {
					return true
				}
			}
			return false
		})
		// The access log too, though the peer address is the gateway's (Rust names a
		// baggage-described source by its canonical service).
		for _, line := range strings.Split(b.nodes[2].logs.String(), "\n") {
			if strings.Contains(line, "connection complete") && strings.Contains(line, "direction=inbound") &&
				strings.Contains(line, "src.workload=client src.namespace=foo src.identity=spiffe://cluster.local/ns/foo/sa/client") {
				return
			}
		}
		t.Fatal("no inbound access log on net-b names foo/client")
	})
	t.Run("the source's metrics name the real destination", func(t *testing.T) {
		// From the far end's answer (its baggage) and the inner peer's certificate, as
		// Rust's DerivedWorkload; the gateway is only dst.addr.
		ztest.Eventually(t, "net-a counts the connection to net-b's server", func() bool {
			for _, line := range strings.Split(scrape(t, b.nodes[1]), "\n") {
				if strings.HasPrefix(line, "istio_tcp_connections_opened_total{") && strings.Contains(line, `reporter="source"`) &&
					strings.Contains(line, `destination_workload="server"`) && strings.Contains(line, `destination_principal="`+echoSAN+`"`) &&
					strings.Contains(line, `destination_service="`+echoHost+`"`) {
					return true
				}
			}
			return false
		})
		if !strings.Contains(b.nodes[1].logs.String(), "dst.addr="+gwB+":15008 dst.hbone_addr="+echoHost+":80 dst.service="+echoHost+
			" dst.workload=server dst.namespace=default dst.identity="+echoSAN) {
			t.Fatal("no outbound access log on net-a names the server behind the gateway")
		}
	})
	t.Run("refusals", func(t *testing.T) { networkRefusals(t, b) })
	t.Run("PROXY v2 to an application tunnel", func(t *testing.T) { proxyTunnel(t, b) })
	t.Run("Prometheus scrapes ztunnel over HBONE", func(t *testing.T) { selfScrape(t, b) })
}

func wantForward(t *testing.T, g *ztest.EastWestGateway, authority string) {
	t.Helper()
	for _, f := range g.Forwards() {
		if f.Authority == authority && f.Status == 200 && f.To.String() == "10.70.2.10:15008" {
			return
		}
	}
	t.Fatalf("the gateway forwarded %+v; want %s to 10.70.2.10:15008", g.Forwards(), authority)
}

// proxyTunnel: sandwich's app listens on its loopback only (LOCALHOST_APP_TUNNEL) at
// the tunnel's port and reads a PROXY v2 header, parsed here by go-proxyproto, naming
// the client, the address it dialled and its identity (TLV 0xD0).
func proxyTunnel(t *testing.T, b *networksBed) {
	var l net.Listener
	if err := b.pods["sandwich"].Do(func() (err error) { l, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", proxyPort)); return err }); err != nil {
		t.Fatal(err)
	}
	headers := make(chan *proxyproto.Header, 1)
	ztest.Serve(t, l, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		h, err := proxyproto.Read(bufio.NewReader(c))
		if err != nil {
			t.Errorf("reading the PROXY header: %v", err)
			return
		}
		headers <- h
		fmt.Fprintln(c, "tunnelled")
	})
	c, err := b.pods["client"].Dial("10.70.1.13:8080")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "tunnelled\n" {
		t.Fatalf("client read %q, %v", line, err)
	}
	h := <-headers
	src, dst, ok := h.TCPAddrs()
	if h.Version != 2 || h.Command != proxyproto.PROXY || !ok || src.IP.String() != "10.70.1.10" || dst.String() != "10.70.1.13:8080" {
		t.Fatalf("PROXY header v%d %v %v → %v; want v2 PROXY 10.70.1.10:* → 10.70.1.13:8080", h.Version, h.Command, h.SourceAddr, h.DestinationAddr)
	}
	tlvs, err := h.TLVs()
	if err != nil || len(tlvs) != 1 || tlvs[0].Type != 0xD0 || string(tlvs[0].Value) != "spiffe://cluster.local/ns/foo/sa/client" {
		t.Fatalf("TLVs %+v, %v; want 0xD0 = client's SPIFFE identity", tlvs, err)
	}
}

// selfScrape: prom, a mesh pod, GETs node 1's ztunnel's stats port at its address; its
// ztunnel tunnels that to ztunnel's own inbound (HBONE with ztunnel's identity), which
// hands it to the stats server.
func selfScrape(t *testing.T, b *networksBed) {
	stats := b.nodes[1].app.Addrs().Stats[0].(*net.TCPAddr).Port
	tr := &http.Transport{DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) { return b.pods["prom"].Dial(addr) }}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(fmt.Sprintf("http://10.70.1.1:%d/metrics", stats))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "istio_build") {
		t.Fatalf("scrape over HBONE: %d, %d bytes", resp.StatusCode, len(body))
	}
	// Any other port of ztunnel's address is refused by its own inbound (503, logged).
	if c, err := b.pods["prom"].Dial("10.70.1.1:15021"); err == nil {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if n, err := c.Read(make([]byte, 1)); err == nil {
			t.Errorf("read %d bytes from ztunnel's port 15021 over HBONE", n)
		}
		c.Close()
	}
	ztest.Eventually(t, "the other port refused", func() bool {
		return strings.Contains(b.nodes[1].logs.String(), "serves only its stats port")
	})
	ztest.Eventually(t, "ztunnel's own inbound logged the scrape with both identities", func() bool {
		logs := b.nodes[1].logs.String()
		return strings.Contains(logs, "spiffe://cluster.local/ns/istio-system/sa/ztunnel") &&
			strings.Contains(logs, "spiffe://cluster.local/ns/monitoring/sa/prom")
	})
}

// networkRefusals: a far end that is not who the service says (the inner handshake
// fails: TLS_FAILURE, though the gateway forwarded it), and a gateway behind another
// gateway (refused before any dial); and no PROXY header reaches an app that declared
// no tunnel (the server echoes exactly what the client sent).
func networkRefusals(t *testing.T, b *networksBed) {
	client := b.pods["client"]
	if server, _, err := ask(t, client, "10.96.0.11:80"); err == nil {
		t.Fatalf("imposter: reached %q, though the far end cannot prove its SANs", server)
	}
	wantForward(t, b.gws["net-b"], "imposter.default.svc.cluster.local:80")
	ztest.Eventually(t, "the inner handshake's failure counted on net-a", func() bool {
		m := scrape(t, b.nodes[1])
		return strings.Contains(m, `destination_service="imposter.default.svc.cluster.local"`) &&
			strings.Contains(m, `response_flags="TLS_FAILURE"`)
	})
	if server, _, err := ask(t, client, "10.96.0.12:80"); err == nil {
		t.Fatalf("looped: reached %q through two gateways", server)
	}
	ztest.Eventually(t, "the loop refused, named", func() bool {
		return strings.Contains(b.nodes[1].logs.String(), "network gateway behind another gateway")
	})
	// A remote pod without a ztunnel: the gateway would have to open its app port.
	forwards := len(b.gws["net-b"].Forwards())
	if server, _, err := ask(t, client, "10.70.2.11:8080"); err == nil {
		t.Fatalf("legacy: reached %q through the gateway", server)
	}
	ztest.Eventually(t, "the plaintext pod refused, named", func() bool {
		return strings.Contains(b.nodes[1].logs.String(), "a gateway forwards only to HBONE")
	})
	if n := len(b.gws["net-b"].Forwards()); n != forwards {
		t.Errorf("the gateway was asked %d times for a pod it cannot reach", n-forwards)
	}
	c, err := client.Dial(echoVIP + ":80")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(c, "ping\n")
	if echo, err := r.ReadString('\n'); err != nil || echo != "ping\n" {
		t.Fatalf("the server echoed %q, %v: something besides the client's bytes reached it", echo, err)
	}
}
