package proxy_test

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ztunnel-go/ztunnel/internal/ca"
	"github.com/ztunnel-go/ztunnel/internal/certmgr"
	"github.com/ztunnel-go/ztunnel/internal/hbone"
	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/logging"
	"github.com/ztunnel-go/ztunnel/internal/metrics"
	"github.com/ztunnel-go/ztunnel/internal/mtls"
	"github.com/ztunnel-go/ztunnel/internal/proxy"
	"github.com/ztunnel-go/ztunnel/internal/rbac"
	"github.com/ztunnel-go/ztunnel/internal/state"
	"github.com/ztunnel-go/ztunnel/internal/xds"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// The two-node mesh of these tests. Node A runs the clients (reached through its SOCKS5
// listener), node B the servers; each ztunnel listens on its workloads' own addresses.
const meshYAML = `
workloads:
- {uid: a//sleep, name: sleep, namespace: foo, serviceAccount: sleep, workloadIps: ["127.0.10.2"], protocol: HBONE, node: a,
   workloadName: sleep, canonicalName: sleep, canonicalRevision: v1}
- {uid: a//other, name: other, namespace: foo, serviceAccount: other, workloadIps: ["127.0.10.3"], protocol: HBONE, node: a}
- {uid: a//client, name: client, namespace: bar, serviceAccount: client, workloadIps: ["127.0.10.4"], protocol: HBONE, node: a}
- {uid: b//echo-1, name: echo-1, namespace: default, serviceAccount: echo, workloadIps: ["127.0.11.1"], protocol: HBONE, node: b,
   workloadName: echo, canonicalName: echo, canonicalRevision: v2,
   services: {"default/echo.default.svc.cluster.local": {80: 8080}}}
- {uid: b//echo-2, name: echo-2, namespace: default, serviceAccount: echo, workloadIps: ["127.0.11.2"], protocol: HBONE, node: b,
   workloadName: echo, canonicalName: echo, canonicalRevision: v2,
   services: {"default/echo.default.svc.cluster.local": {80: 8080}}}
- {uid: b//echo-3, name: echo-3, namespace: default, serviceAccount: echo, workloadIps: ["127.0.11.3"], protocol: HBONE, node: b,
   workloadName: echo, canonicalName: echo, canonicalRevision: v2,
   services: {"default/echo.default.svc.cluster.local": {80: 8080}}}
- {uid: b//echo-4, name: echo-4, namespace: default, serviceAccount: echo, workloadIps: ["127.0.11.4"], protocol: HBONE, node: b,
   workloadName: echo, canonicalName: echo, canonicalRevision: v2,
   status: Unhealthy, services: {"default/echo.default.svc.cluster.local": {80: 8080}}}
- {uid: b//legacy, name: legacy, namespace: default, workloadIps: ["127.0.11.5"], protocol: TCP, node: b}
- {uid: b//waypoint, name: waypoint, namespace: default, serviceAccount: waypoint, workloadIps: ["127.0.11.9"], protocol: HBONE, node: b}
services:
- {name: echo, namespace: default, hostname: echo.default.svc.cluster.local, vips: ["/127.0.12.1"], ports: {80: 8080}}
- {name: behind-waypoint, namespace: default, hostname: wp.default.svc.cluster.local, vips: ["/127.0.12.2"], ports: {80: 8080},
   waypoint: {destination: "/127.0.11.9", hboneMtlsPort: PORT}}
`

var (
	sleepIP  = netip.MustParseAddr("127.0.10.2")
	otherIP  = netip.MustParseAddr("127.0.10.3")
	barIP    = netip.MustParseAddr("127.0.10.4")
	echoIPs  = []string{"127.0.11.1", "127.0.11.2", "127.0.11.3", "127.0.11.4", "127.0.11.5"}
	sleepID  = identity.New("cluster.local", "foo", "sleep")
	echoID   = identity.New("cluster.local", "default", "echo")
	waypoint = netip.MustParseAddr("127.0.11.9")
	appPorts = map[string]func(net.Conn){"8080": whoami, "9000": echoApp, "9001": sinkApp, "9004": resetApp, "9005": byeApp,
		"9006": countApp, "9007": dumpThenSink, "9008": resetAfter5MiB, "9009": watchEnd}
	setupOnce sync.Mutex
)

type node struct {
	store   *state.Store
	proxy   *proxy.Proxy
	logs    *ztest.LogBuffer
	socks   netip.AddrPort
	metrics *prometheus.Registry // this node's scrape
	certs   *certmgr.Manager
}

type bed struct {
	ca       *ca.CA
	port     uint16
	a, b     *node
	wpAuth   chan string // authorities the fake waypoint saw
	accepted *counter    // TLS connections node B accepted, by source IP
}

// newBed starts the two nodes. Node B enforces authorization with the real engine over
// its own store (no policy at first: everything allowed); tests add policies there.
func newBed(t testing.TB, opts ...func(*proxy.Options)) *bed {
	t.Helper()
	setupOnce.Lock()
	t.Cleanup(setupOnce.Unlock)
	root, err := ca.New("cluster.local", time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &bed{ca: root, port: freePort(t), wpAuth: make(chan string, 16), accepted: &counter{m: map[netip.Addr]int{}}}
	startApps(t)
	b.startWaypoint(t)
	b.b = b.startNode(t, "b", proxy.Listen{Inbound: b.addrs(echoIPs...), HBONEPort: b.port,
		InboundPlaintext: []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("127.0.11.1"), b.port+1)}}, b.accepted, true, opts)
	b.a = b.startNode(t, "a", proxy.Listen{Socks5: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}, HBONEPort: b.port}, nil, false, opts)
	return b
}

func (b *bed) addrs(ips ...string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, ip := range ips {
		out = append(out, netip.AddrPortFrom(netip.MustParseAddr(ip), b.port))
	}
	return out
}

func (b *bed) startNode(t testing.TB, _ string, l proxy.Listen, count *counter, authz bool, opts []func(*proxy.Options)) *node {
	t.Helper()
	local, err := xds.ParseLocalConfig([]byte(strings.ReplaceAll(meshYAML, "PORT", fmt.Sprint(b.port))))
	if err != nil {
		t.Fatal(err)
	}
	n := &node{store: state.NewStore(), logs: &ztest.LogBuffer{}, metrics: prometheus.NewRegistry()}
	if err := local.Apply(n.store); err != nil {
		t.Fatal(err)
	}
	log, _, _ := logging.New(n.logs, "plain", "debug")
	certs := certmgr.New(b.ca, certmgr.Options{Logger: log})
	n.certs = certs
	var sockets proxy.Sockets = redirected{&proxy.HostSockets{}}
	if count != nil {
		sockets = countingSockets{Sockets: sockets, c: count}
	}
	o := proxy.Options{State: n.store, Certs: certs, Sockets: sockets, Listen: l, Logger: log,
		Traffic: metrics.NewTraffic(n.metrics)}
	if authz {
		o.Authz = rbac.NewEngine(n.store)
	}
	for _, opt := range opts {
		opt(&o)
	}
	n.proxy = proxy.New(o)
	ctx, cancel := context.WithCancel(context.Background())
	if err := n.proxy.Bind(ctx); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { certs.Run(ctx) })
	wg.Go(func() { n.proxy.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	if len(l.Socks5) > 0 {
		n.socks = netip.MustParseAddrPort(n.proxy.Addrs()[0].String())
	}
	return n
}

func freePort(t testing.TB) uint16 {
	l, err := net.Listen("tcp", "127.0.11.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

// startApps runs the test apps on every node-B address.
func startApps(t testing.TB) {
	for _, ip := range echoIPs {
		for port, h := range appPorts {
			serve(t, net.JoinHostPort(ip, port), h)
		}
	}
}

func serve(t testing.TB, addr string, h func(net.Conn)) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ztest.Serve(t, l, h)
}

// whoami says which address served the connection and who connected, then echoes.
func whoami(c net.Conn) {
	fmt.Fprintf(c, "%s %s\n", c.LocalAddr(), c.RemoteAddr())
	echoApp(c)
}

func echoApp(c net.Conn) {
	io.Copy(c, c)
	c.(*net.TCPConn).CloseWrite()
	io.Copy(io.Discard, c)
}

// sinkApp reads to EOF, then answers with the count: the client's half-close must not
// stop the answer coming back.
func sinkApp(c net.Conn) {
	n, _ := drain(c)
	fmt.Fprintf(c, "%d", n)
}

// drain reads r to its end in 256 KiB reads, as a bulk app (iperf3) does: io.Discard's
// 8 KiB reads would cost the benchmark's sink more syscalls than ztunnel makes.
func drain(r io.Reader) (int64, error) {
	buf := make([]byte, 256<<10)
	var total int64
	for {
		n, err := r.Read(buf)
		total += int64(n)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// byeApp says bye and half-closes first, then reads until the client ends.
func byeApp(c net.Conn) {
	c.Write([]byte("bye"))
	c.(*net.TCPConn).CloseWrite()
	io.Copy(io.Discard, c)
}

// resetApp takes one byte and aborts the connection.
func resetApp(c net.Conn) {
	c.Read(make([]byte, 1))
	c.(*net.TCPConn).SetLinger(0)
}

// startWaypoint runs a fake waypoint (an HBONE server with the waypoint's certificate)
// that records the authority it is asked for and echoes.
func (b *bed) startWaypoint(t testing.TB) {
	cert, err := b.ca.Fetch(context.Background(), identity.New("cluster.local", "default", "waypoint"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := mtls.ServerConfig(nil, func(context.Context, net.Addr) (*identity.Cert, error) { return cert, nil })
	serve(t, netip.AddrPortFrom(waypoint, b.port).String(), func(nc net.Conn) {
		tc := tls.Server(nc, cfg)
		if tc.Handshake() != nil {
			return
		}
		hc, err := hbone.NewServerConn(tc, hbone.Settings{})
		if err != nil {
			return
		}
		hc.Serve(func(st *hbone.Stream) {
			b.wpAuth <- st.Request().Authority
			st.Respond(200)
			io.Copy(st, st)
			st.CloseWrite()
		})
	})
}

// socks connects from src through node A's SOCKS5 to target ("ip:port" or
// "host:port") and returns the connection and the SOCKS5 reply code.
func (b *bed) socks(t testing.TB, src netip.Addr, target string) (*net.TCPConn, byte) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src.AsSlice()}, Timeout: 10 * time.Second}
	nc, err := d.Dial("tcp", b.a.socks.String())
	if err != nil {
		t.Fatal(err)
	}
	c := nc.(*net.TCPConn)
	c.SetDeadline(time.Now().Add(30 * time.Second))
	host, portStr, _ := net.SplitHostPort(target)
	var port uint16
	fmt.Sscan(portStr, &port)
	req := []byte{5, 1, 0}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Is4() {
		req = append(append(req, 1), ip.AsSlice()...)
	} else {
		req = append(append(req, 3, byte(len(host))), host...)
	}
	req = binary.BigEndian.AppendUint16(req, port)
	c.Write([]byte{5, 1, 0})
	reply := make([]byte, 2)
	if _, err := io.ReadFull(c, reply); err != nil {
		t.Fatalf("SOCKS5 greeting: %v", err)
	}
	c.Write(req)
	resp := make([]byte, 10)
	if _, err := io.ReadFull(c, resp); err != nil {
		return c, 0xff
	}
	c.SetDeadline(time.Time{})
	return c, resp[1]
}

// redirected stands in for iptables' REDIRECT to the plaintext port: a connection to
// 127.0.11.1:<port+1> was "going to" 127.0.11.1:9000. (The netns test bed, with real
// iptables rules, exercises SO_ORIGINAL_DST itself.)
type redirected struct{ proxy.Sockets }

func (r redirected) OriginalDst(c *net.TCPConn) (netip.AddrPort, error) {
	local := c.LocalAddr().(*net.TCPAddr).AddrPort()
	return netip.AddrPortFrom(local.Addr().Unmap(), 9000), nil
}

// counter counts accepted connections by source IP.
type counter struct {
	mu sync.Mutex
	m  map[netip.Addr]int
}

func (c *counter) get(ip netip.Addr) int { c.mu.Lock(); defer c.mu.Unlock(); return c.m[ip] }

type countingSockets struct {
	proxy.Sockets
	c *counter
}

func (s countingSockets) Listen(ctx context.Context, a netip.AddrPort) (net.Listener, error) {
	l, err := s.Sockets.Listen(ctx, a)
	return countingListener{Listener: l, c: s.c}, err
}

type countingListener struct {
	net.Listener
	c *counter
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		ip := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr()
		l.c.mu.Lock()
		l.c.m[ip]++
		l.c.mu.Unlock()
	}
	return c, err
}
