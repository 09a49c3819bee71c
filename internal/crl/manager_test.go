package crl_test

import (
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ztunnel-go/ztunnel/internal/crl"
	"github.com/ztunnel-go/ztunnel/internal/logging"
	"github.com/ztunnel-go/ztunnel/internal/metrics"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// configMapDir lays files out as a Kubernetes ConfigMap volume does: the file is a
// symlink through `..data`, itself a symlink to a timestamped directory that an update
// replaces with a rename.
type configMapDir struct {
	dir string
	n   int
}

func (d *configMapDir) write(t *testing.T, data []byte) {
	t.Helper()
	d.n++
	ts := filepath.Join(d.dir, "..ts"+strings.Repeat("x", d.n))
	if err := os.Mkdir(ts, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ts, "ca-crl.pem"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(d.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(d.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if d.n == 1 {
		if err := os.Symlink("..data/ca-crl.pem", filepath.Join(d.dir, "ca-crl.pem")); err != nil {
			t.Fatal(err)
		}
	}
}

// A ConfigMap update revokes a peer of an open connection: it is closed within one
// reload, counted under Rust's metric and logged; a bad update keeps what is in force.
// Pins Rust's CrlManager::start_file_watcher (symlink swaps) and RevocationIndex::navigate.
func TestReloadRevokesOpenConnectionsAndKeepsLastGood(t *testing.T) {
	ztest.NoLeaks(t)
	mesh, other := newPKI(t, "mesh"), newPKI(t, "other")
	peer, bystander := mesh.leaf(t, "peer"), mesh.leaf(t, "bystander")
	cm := &configMapDir{dir: t.TempDir()}
	path := filepath.Join(cm.dir, "ca-crl.pem")
	reg := prometheus.NewRegistry()
	logs := &ztest.LogBuffer{}
	log, _, _ := logging.New(logs, "plain", "debug")
	m := crl.New(crl.Options{Path: path, Metrics: metrics.NewCRL(reg), Logger: log, Interval: 10 * time.Millisecond,
		Anchors: func() []*x509.Certificate { return []*x509.Certificate{mesh.root, mesh.inter} }})
	if err := m.Load(); err != nil {
		t.Fatalf("Load of a file not there yet: %v", err)
	}
	if !strings.Contains(logs.String(), "CRL_PATH does not exist") {
		t.Errorf("no warning for the missing file:\n%s", logs)
	}
	roots := x509.NewCertPool()
	roots.AddCert(mesh.root)
	var revoked, kept atomic.Bool
	untrackPeer := m.Track(m.Generation(), crl.Peer{Certs: []*x509.Certificate{peer, mesh.inter}, Roots: roots,
		Usage: x509.ExtKeyUsageClientAuth, Reporter: "destination"}, func() { revoked.Store(true) })
	defer untrackPeer()
	untrack := m.Track(m.Generation(), crl.Peer{Certs: []*x509.Certificate{bystander, mesh.inter}, Roots: roots,
		Usage: x509.ExtKeyUsageClientAuth, Reporter: "destination"}, func() { kept.Store(true) })
	defer untrack()

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { m.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()

	cm.write(t, crlPEM(t, mesh.inter, mesh.interK, peer))
	ztest.Eventually(t, "the open connection with the revoked peer closed", revoked.Load)
	if kept.Load() {
		t.Error("a connection with a peer the CRL does not name was closed")
	}
	if v := ztest.MetricValue(t, reg, "istio_crl_policy_rejections_total", map[string]string{"reporter": "destination"}); v != 1 {
		t.Errorf("istio_crl_policy_rejections_total = %v, want 1", v)
	}
	chain := [][]*x509.Certificate{{peer, mesh.inter, mesh.root}}
	for _, bad := range [][]byte{[]byte("garbage"), crlPEM(t, other.inter, other.interK)} {
		cm.write(t, bad)
		ztest.Eventually(t, "the bad update counted", func() bool {
			return ztest.MetricValue(t, reg, "istio_crl_reload_failures_total", nil) >= float64(cm.n-1)
		})
		if err := m.Check(chain); err == nil {
			t.Fatalf("after a bad update (%.20q) the CRL in force was dropped", bad)
		}
	}
	if !strings.Contains(logs.String(), "CRL_PATH "+path) {
		t.Errorf("the reload failure does not name CRL_PATH:\n%s", logs)
	}
	cm.write(t, crlPEM(t, mesh.inter, mesh.interK))
	ztest.Eventually(t, "an empty CRL taken", func() bool { return m.Check(chain) == nil })
}
