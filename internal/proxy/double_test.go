package proxy_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/hbone"
	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/state"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
	"istio.io/istio/pkg/workloadapi"
)

// TestInboundFromGateway pins Rust build_inbound_request's from_gateway: a CONNECT
// whose x-forwarded-network names another network came through an east-west gateway,
// so the peer's address (here sleep's, as a gateway's could be any local workload's)
// says nothing of the source: its labels come from its baggage and its identity from
// its certificate.
func TestInboundFromGateway(t *testing.T) {
	ztest.NoLeaks(t)
	b := newBed(t)
	cert, err := b.ca.Fetch(context.Background(), sleepID)
	if err != nil {
		t.Fatal(err)
	}
	bag := "k8s.cluster.name=remote,k8s.namespace.name=far-ns,k8s.pod.name=far-pod,service.name=far-app,service.version=v9"
	far := "net-far"
	req := &hbone.Request{Authority: "127.0.11.1:9000", Baggage: bag, ForwardedNetwork: &far}
	if err := b.hboneRequest(t, cert, sleepIP, "127.0.11.1", req); err != nil {
		t.Fatal(err)
	}
	ztest.Eventually(t, "the connection counted", func() bool { return b.b.logs.WaitFor("connection complete") })
	got := labelsOf(t, b.b.metrics, "istio_tcp_connections_opened_total", "destination")
	want := map[string]string{"source_workload": "far-pod", "source_workload_namespace": "far-ns", "source_cluster": "remote",
		"source_canonical_service": "far-app", "source_canonical_revision": "v9", "source_principal": sleepID.String()}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q (labels %v)", k, got[k], v, got)
		}
	}
	if !b.b.logs.WaitFor("src.workload=far-app src.namespace=far-ns") {
		t.Errorf("the access log does not name the baggage's source:\n%s", b.b.logs)
	}
}

// remoteVIP is the service behind the bed's east-west gateway (throughGateway).
const remoteVIP = "10.99.0.1"

// throughGateway puts node B behind an east-west gateway on another network, as node
// A sees it: service "remote" (VIP 10.99.0.1) has as its only endpoint network far's
// split-horizon workload, behind the gateway at 127.0.13.1. The gateway routes the
// service's hostname to echo-1 on node B's HBONE port.
func (b *bed) throughGateway(t testing.TB) *ztest.EastWestGateway {
	t.Helper()
	const host = "remote.default.svc.cluster.local"
	svc := ztest.Service("default", "remote", []string{remoteVIP}, 9000, 9000, 9001, 9001)
	svc.SubjectAltNames = []string{echoID.String()}
	split := ztest.WithService(ztest.Workload("default", "remote-far"), "default/"+host, 9000, 9000, 9001, 9001)
	split.Uid, split.Network = "far/NetworkGateway/default/remote", "far"
	split.NetworkGateway = &workloadapi.GatewayAddress{Destination: &workloadapi.GatewayAddress_Address{
		Address: ztest.NetworkAddress("far", "127.0.13.1")}}
	l, err := net.Listen("tcp", "127.0.13.1:0")
	if err != nil {
		t.Fatal(err)
	}
	split.NetworkGateway.HboneMtlsPort = uint32(l.Addr().(*net.TCPAddr).Port)
	gw := ztest.Workload("istio-system", "ew", "127.0.13.1")
	gw.Uid, gw.Network = "NetworkGateway/far/127.0.13.1", "far"
	b.a.store.Apply(state.Update{Addresses: ztest.AsAddresses(svc, split, gw)})
	echo := ztest.WithService(ztest.Workload("default", "echo-1", "127.0.11.1"), "default/"+host, 9000, 9000, 9001, 9001)
	echo.Uid, echo.ServiceAccount, echo.Node = "b//echo-1", "echo", "b"
	far := ztest.Service("default", "remote", nil, 9000, 9000, 9001, 9001)
	b.b.store.Apply(state.Update{Addresses: ztest.AsAddresses(far, echo)})
	gwStore := state.NewStore()
	gwStore.Apply(state.Update{Addresses: ztest.AsAddresses(far, echo)})
	cert, err := b.ca.Fetch(context.Background(), identity.New("cluster.local", "istio-system", "ew"))
	if err != nil {
		t.Fatal(err)
	}
	dial := func(addr string) (net.Conn, error) { return net.DialTimeout("tcp", addr, 10*time.Second) }
	return ztest.ServeEastWestGateway(t, l, ztest.GatewayOptions{State: gwStore, Dial: dial, Cert: cert, HBONEPort: b.port})
}

// TestDoubleHBONEPooling pins Rust proxy_to_double_hbone's pooling: the outer tunnel to
// the gateway is pooled (two connections, one TLS connection to the gateway), the
// inner one is not (node B takes one TLS connection per user connection, from the
// gateway), and the bytes arrive whole.
func TestDoubleHBONEPooling(t *testing.T) {
	ztest.NoLeaks(t)
	b := newBed(t)
	gw := b.throughGateway(t)
	before := b.accepted.get(netip.MustParseAddr("127.0.0.1"))
	for i := range 2 {
		c, code := b.socks(t, sleepIP, remoteVIP+":9000")
		if code != 0 {
			t.Fatalf("connection %d: SOCKS5 reply %d", i, code)
		}
		msg := []byte("through the gateway")
		c.Write(msg)
		c.CloseWrite()
		got, _ := io.ReadAll(c)
		c.Close()
		if !bytes.Equal(got, msg) {
			t.Fatalf("connection %d: echoed %q", i, got)
		}
	}
	if n := gw.Accepted(); n != 1 {
		t.Errorf("the gateway took %d TLS connections for 2 tunnels; the outer one is pooled", n)
	}
	if n := b.accepted.get(netip.MustParseAddr("127.0.0.1")) - before; n != 2 {
		t.Errorf("node B took %d TLS connections from the gateway for 2 tunnels; the inner one is not pooled", n)
	}
	for _, f := range gw.Forwards() {
		if f.Authority != "remote.default.svc.cluster.local:9000" || f.Status != 200 || f.ForwardedNetwork != nil {
			t.Errorf("the gateway saw %+v", f)
		}
	}
}
