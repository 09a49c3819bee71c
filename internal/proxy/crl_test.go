package proxy_test

import (
	"context"
	"crypto/x509"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ztunnel-go/ztunnel/internal/crl"
	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/metrics"
	"github.com/ztunnel-go/ztunnel/internal/mtls"
	"github.com/ztunnel-go/ztunnel/internal/proxy"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// crlBed is the two-node bed with CRL_PATH on both nodes: files[0] is node B's (the
// servers), files[1] node A's (the clients).
type crlBed struct {
	*bed
	files [2]string
	regs  [2]*prometheus.Registry // each node's CRL metrics
}

func newCRLBed(t *testing.T) *crlBed {
	dir := t.TempDir()
	cb := &crlBed{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	n := 0
	cb.bed = newBed(t, func(o *proxy.Options) {
		path := filepath.Join(dir, []string{"b.pem", "a.pem"}[n])
		cb.files[n], cb.regs[n] = path, prometheus.NewRegistry()
		m := crl.New(crl.Options{Path: path, Interval: 10 * time.Millisecond, Logger: o.Logger,
			Metrics: metrics.NewCRL(cb.regs[n]),
			Anchors: func() []*x509.Certificate { return []*x509.Certificate{cb.ca.Root()} }})
		o.CRL, o.TLS = m, &mtls.Policy{Revoked: m.Check}
		wg.Go(func() { m.Run(ctx) })
		n++
	})
	return cb
}

// revoke has node (0: B, 1: A) load a CRL that revokes the certificate n holds for id.
func (cb *crlBed) revoke(t *testing.T, node int, n *node, id identity.Identity) {
	t.Helper()
	cert, err := n.certs.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	cb.revokeSerials(t, node, cert.Leaf.SerialNumber)
}

func (cb *crlBed) revokeSerials(t *testing.T, node int, serials ...*big.Int) {
	t.Helper()
	data, err := cb.ca.RevocationList(time.Now().UnixNano(), serials...)
	if err != nil {
		t.Fatal(err)
	}
	ztest.ReplaceFile(t, cb.files[node], data)
}

// A client revoked while its tunnel is open: node B closes the tunnel within one CRL
// reload (CERT_REVOKED, istio_crl_policy_rejections_total), and refuses the client's
// next handshake. Pins Rust's RevocationIndex::navigate and the inbound acceptor's CRL
// (InboundAcceptor with with_crls).
func TestRevokedClientClosedAndRefused(t *testing.T) {
	ztest.NoLeaks(t)
	cb := newCRLBed(t)
	cb.revokeSerials(t, 0) // an empty CRL in force
	c, code := cb.socks(t, sleepIP, "127.0.11.1:9000")
	if code != 0 {
		t.Fatalf("tunnel refused before any revocation: SOCKS5 code %d", code)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
		t.Fatalf("echo before revocation: %v", err)
	}
	cb.revoke(t, 0, cb.a, sleepID)
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if n, err := io.Copy(io.Discard, c); err == os.ErrDeadlineExceeded || n != 0 {
		t.Fatalf("the tunnel stayed open after its client was revoked (read %d, %v)", n, err)
	}
	ztest.Eventually(t, "the revoked tunnel counted CERT_REVOKED at the destination", func() bool {
		return ztest.MetricValue(t, cb.b.metrics, "istio_tcp_connections_closed_total",
			map[string]string{"reporter": "destination", "response_flags": "CERT_REVOKED"}) == 1
	})
	if !cb.b.logs.WaitFor("connection closed: the peer's certificate was revoked") {
		t.Errorf("no log line for the revoked tunnel:\n%s", cb.b.logs)
	}
	c2, code := cb.socks(t, sleepIP, "127.0.11.1:9000")
	c2.Close()
	if code == 0 {
		t.Fatal("a revoked client opened a new tunnel")
	}
	ztest.Eventually(t, "both revocations counted", func() bool {
		return ztest.MetricValue(t, cb.regs[0], "istio_crl_policy_rejections_total", map[string]string{"reporter": "destination"}) == 2
	})
	// Another identity of the same node is not touched.
	c3, code := cb.socks(t, otherIP, "127.0.11.1:9000")
	c3.Close()
	if code != 0 {
		t.Errorf("a client the CRL does not name was refused: SOCKS5 code %d", code)
	}
}

// A server revoked: node A refuses it at the handshake with CERT_REVOKED, and closes a
// pooled connection it had open to it. Pins Rust's outbound connector with CRLs
// (IdentityVerifier) and h2 client's drive_connection teardown.
func TestRevokedServerRefused(t *testing.T) {
	ztest.NoLeaks(t)
	cb := newCRLBed(t)
	c, code := cb.socks(t, sleepIP, "127.0.11.2:9000")
	if code != 0 {
		t.Fatalf("tunnel refused before any revocation: SOCKS5 code %d", code)
	}
	defer c.Close()
	cb.revoke(t, 1, cb.b, echoID)
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.Copy(io.Discard, c); err == os.ErrDeadlineExceeded {
		t.Fatal("the tunnel to a revoked server stayed open")
	}
	ztest.Eventually(t, "the open tunnel counted CERT_REVOKED at the source", func() bool {
		return ztest.MetricValue(t, cb.a.metrics, "istio_tcp_connections_closed_total",
			map[string]string{"reporter": "source", "response_flags": "CERT_REVOKED"}) == 1
	})
	c2, code := cb.socks(t, sleepIP, "127.0.11.2:9000")
	c2.Close()
	if code == 0 {
		t.Fatal("a tunnel opened to a revoked server")
	}
	ztest.Eventually(t, "the refused handshake counted", func() bool {
		return ztest.MetricValue(t, cb.a.metrics, "istio_tcp_connections_failed_total",
			map[string]string{"reporter": "source", "response_flags": "CERT_REVOKED"}) == 1 &&
			ztest.MetricValue(t, cb.regs[1], "istio_crl_policy_rejections_total", map[string]string{"reporter": "source"}) == 2
	})
}
