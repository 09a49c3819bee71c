package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"istio.io/istio/pkg/workloadapi"

	"github.com/ztunnel-go/ztunnel/internal/ca"
	"github.com/ztunnel-go/ztunnel/internal/hbone"
	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/mtls"
	"github.com/ztunnel-go/ztunnel/internal/state"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestTunnelCarriesBytesEachWay(t *testing.T) {
	ztest.NoLeaks(t)
	b := newBed(t)
	c, code := b.socks(t, sleepIP, "127.0.11.1:9000")
	if code != 0 {
		t.Fatalf("SOCKS5 reply %d; node A log:\n%s", code, b.a.logs)
	}
	defer c.Close()
	size := transferSize()
	sent, recv := sha256.New(), sha256.New()
	var wg sync.WaitGroup
	wg.Go(func() {
		io.Copy(io.MultiWriter(c, sent), io.LimitReader(rand.NewChaCha8([32]byte{7}), size))
		c.CloseWrite()
	})
	n, err := io.Copy(recv, c)
	wg.Wait()
	if err != nil || n != size || !bytes.Equal(sent.Sum(nil), recv.Sum(nil)) {
		t.Fatalf("echoed %d of %d bytes (%v); digests equal: %v", n, size, err, bytes.Equal(sent.Sum(nil), recv.Sum(nil)))
	}
}

func TestHalfCloseEachWay(t *testing.T) {
	ztest.NoLeaks(t)
	b := newBed(t)
	// The client finishes sending first; the app's answer still comes back.
	c, code := b.socks(t, sleepIP, "127.0.11.1:9001")
	if code != 0 {
		t.Fatalf("SOCKS5 reply %d", code)
	}
	c.Write(bytes.Repeat([]byte("a"), 3<<20))
	c.CloseWrite()
	if got, _ := io.ReadAll(c); string(got) != "3145728" {
		t.Errorf("after the client's FIN the app answered %q, want 3145728", got)
	}
	c.Close()
	// The app finishes first (echoApp half-closes after its input ends, so here the
	// whoami line then EOF): the client's direction stays open until it closes.
	c, _ = b.socks(t, sleepIP, "127.0.11.1:8080")
	r := bufio.NewReader(c)
	r.ReadString('\n')
	c.Write([]byte("still talking"))
	buf := make([]byte, len("still talking"))
	if _, err := io.ReadFull(r, buf); err != nil || string(buf) != "still talking" {
		t.Errorf("echo = %q, %v", buf, err)
	}
	c.CloseWrite()
	if rest, err := io.ReadAll(r); err != nil || len(rest) != 0 {
		t.Errorf("after both FINs: %q, %v", rest, err)
	}
	c.Close()
}

func TestStreamErrorLeavesOtherTunnels(t *testing.T) {
	ztest.NoLeaks(t)
	b := newBed(t)
	good, _ := b.socks(t, sleepIP, "127.0.11.1:9000")
	defer good.Close()
	bad, code := b.socks(t, sleepIP, "127.0.11.1:9004")
	if code != 0 {
		t.Fatalf("SOCKS5 reply %d", code)
	}
	bad.Write([]byte("x")) // the app resets its side
	io.ReadAll(bad)
	bad.Close()
	good.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(good, buf); err != nil || string(buf) != "ping" {
		t.Errorf("sibling tunnel = %q, %v", buf, err)
	}
	if n := b.accepted.get(sleepIP); n != 1 {
		t.Errorf("%d TLS connections for two tunnels of one key, want 1 shared", n)
	}
}

func TestVIPBalancesOverHealthyEndpoints(t *testing.T) {
	ztest.NoLeaks(t)
	b := newBed(t)
	seen := map[string]int{}
	for range 60 {
		c, code := b.socks(t, sleepIP, "echo.default.svc.cluster.local:80")
		if code != 0 {
			t.Fatalf("SOCKS5 reply %d", code)
		}
		line, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		app, client, _ := strings.Cut(strings.TrimSpace(line), " ")
		seen[app]++
		if !strings.HasPrefix(client, "127.0.10.2:") {
			t.Errorf("the app saw client %s, want the source workload 127.0.10.2", client)
		}
	}
	for _, want := range []string{"127.0.11.1:8080", "127.0.11.2:8080", "127.0.11.3:8080"} {
		if seen[want] == 0 {
			t.Errorf("endpoint %s never chosen: %v", want, seen)
		}
	}
	if len(seen) != 3 {
		t.Errorf("connections reached %v, want only the three healthy endpoints on 8080", seen)
	}
}

func TestWaypointGetsOriginalAuthority(t *testing.T) {
	ztest.NoLeaks(t)
	b := newBed(t)
	c, code := b.socks(t, sleepIP, "127.0.12.2:80")
	if code != 0 {
		t.Fatalf("SOCKS5 reply %d; log:\n%s", code, b.a.logs)
	}
	defer c.Close()
	if got := <-b.wpAuth; got != "127.0.12.2:80" {
		t.Errorf("waypoint asked for %q, want the original VIP:port 127.0.12.2:80", got)
	}
	c.Write([]byte("via waypoint"))
	buf := make([]byte, 12)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Error(err)
	}
}

func TestPlainTCPDestinations(t *testing.T) {
	ztest.NoLeaks(t)
	b := newBed(t)
	for _, target := range []string{"127.0.11.5:8080", "127.0.11.5:9000"} { // a TCP workload; not HBONE
		c, code := b.socks(t, sleepIP, target)
		if code != 0 {
			t.Fatalf("%s: SOCKS5 reply %d", target, code)
		}
		c.Close()
	}
	if n := b.accepted.get(sleepIP); n != 0 {
		t.Errorf("plain TCP destinations went through HBONE (%d connections)", n)
	}
}

func TestPoolLimitsAndIdentitySeparation(t *testing.T) {
	ztest.NoLeaks(t)
	b := newBed(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	open := func(src netip.Addr) {
		c, code := b.socks(t, src, "127.0.11.1:9000")
		if code != 0 {
			t.Errorf("SOCKS5 reply %d", code)
		}
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	for i := range 500 {
		wg.Go(func() { open(sleepIP) })
		if i%5 == 0 {
			wg.Go(func() { open(otherIP) })
		}
	}
	wg.Wait()
	for _, c := range conns {
		c.Close()
	}
	if n := b.accepted.get(sleepIP); n > 5 {
		t.Errorf("500 tunnels of one identity used %d TLS connections, want at most 5", n)
	}
	if n := b.accepted.get(otherIP); n != 1 {
		t.Errorf("the second identity used %d connections, want its own 1", n)
	}
}

func TestWrongServerIdentityRefused(t *testing.T) {
	ztest.NoLeaks(t)
	b := newBed(t)
	imp := ztest.Workload("default", "echo-1", "127.0.11.1")
	imp.Uid, imp.ServiceAccount, imp.Node = "b//echo-1", "impostor", "b"
	b.b.store.Apply(state.Update{Addresses: []*workloadapi.Address{ztest.AsAddress(imp)}})
	accepts := countAccepts.Load()
	c, code := b.socks(t, sleepIP, "127.0.11.1:9006")
	c.Close()
	if code == 0 {
		t.Fatal("tunnel opened to a server presenting another identity")
	}
	if !b.a.logs.WaitFor("peer identity is not one of the expected") {
		t.Errorf("no log line for the wrong identity:\n%s", b.a.logs)
	}
	// The client gave up in the handshake: no CONNECT went out, the app saw nothing.
	if n := countAccepts.Load() - accepts; n != 0 {
		t.Errorf("the app was dialed %d times through a server with the wrong identity", n)
	}
}

// hboneClient dials node B's inbound directly with cert and opens a CONNECT.
// inspect, when given, sees the stream once it is open.
func (b *bed) hboneClient(t *testing.T, cert *identity.Cert, to string, authority string, inspect ...func(*hbone.Stream)) error {
	t.Helper()
	return b.hboneRequest(t, cert, netip.Addr{}, to, &hbone.Request{Authority: authority}, inspect...)
}

// hboneRequest is hboneClient from the address from (any when invalid), sending req.
func (b *bed) hboneRequest(t *testing.T, cert *identity.Cert, from netip.Addr, to string, req *hbone.Request, inspect ...func(*hbone.Stream)) error {
	t.Helper()
	var d net.Dialer
	if from.IsValid() {
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(from, 0))
	}
	nc, err := d.Dial("tcp", netip.AddrPortFrom(netip.MustParseAddr(to), b.port).String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	tc := tls.Client(nc, mtls.ClientConfig(nil, cert, []identity.Identity{echoID}))
	if err := mtls.Handshake(context.Background(), tc, 0); err != nil {
		return err
	}
	hc, err := hbone.NewClientConn(tc, hbone.Settings{})
	if err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { hc.Run(); close(done) }()
	defer func() { hc.Close(); <-done }()
	hc.TryReserve(1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := hc.OpenStream(ctx, req)
	if err == nil {
		for _, f := range inspect {
			f(st)
		}
		st.Close()
	}
	return err
}

func TestInboundRefusals(t *testing.T) {
	ztest.NoLeaks(t)
	b := newBed(t)
	good, _ := b.ca.Fetch(context.Background(), sleepID)
	foreignTD, _ := b.ca.Fetch(context.Background(), identity.New("evil.local", "foo", "sleep"))
	otherCA, _ := ca.New("cluster.local", time.Hour, nil)
	unknownCA, _ := otherCA.Fetch(context.Background(), sleepID)
	tests := []struct {
		name      string
		cert      *identity.Cert
		authority string
		status    int    // expected CONNECT status; 0: the TLS handshake fails
		log       string // what node B logs
	}{
		{"client from another trust domain", foreignTD, "127.0.11.1:9000", 0, "peer is from another trust domain"},
		{"client from an unknown CA", unknownCA, "127.0.11.1:9000", 0, "inbound TLS handshake failed"},
		{"IP that is not the local workload", good, "127.0.11.2:9000", 400, "ip mismatch"},
		{"ztunnel's HBONE port", good, "127.0.11.1:15008", 503, "port 15008 is ztunnel's own"},
		{"ztunnel's outbound port", good, "127.0.11.1:15001", 503, "port 15001 is ztunnel's own"},
		{"ztunnel's plaintext port", good, "127.0.11.1:15006", 503, "port 15006 is ztunnel's own"},
		{"nothing listening", good, "127.0.11.1:9999", 503, "connection refused"},
		{"allowed", good, "127.0.11.1:9000", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := b.hboneClient(t, tt.cert, "127.0.11.1", tt.authority)
			var se *hbone.StatusError
			switch {
			case tt.status == 200 && err != nil:
				t.Errorf("CONNECT failed: %v", err)
			case tt.status == 0 && (err == nil || errors.As(err, &se)):
				// TLS 1.3: the client learns of a refused certificate on its first read.
				if err == nil {
					t.Error("handshake accepted")
				}
			case tt.status != 0 && tt.status != 200 && (!errors.As(err, &se) || se.Code != tt.status):
				t.Errorf("err = %v, want HTTP %d", err, tt.status)
			}
			if tt.log != "" && !b.b.logs.WaitFor(tt.log) {
				t.Errorf("node B logged no %q:\n%s", tt.log, b.b.logs)
			}
		})
	}
}
