package istiod

import (
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ztunnel-go/ztunnel/internal/ca"
	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// ALT_XDS_HOSTNAME / ALT_CA_HOSTNAME: a certificate that does not name the address's
// host is accepted when it names the alternate one, and only then; the chain is checked
// all the same. Pins Rust's AltHostnameVerifier::verify_server_cert.
func TestVerifierAltHostname(t *testing.T) {
	ztest.NoLeaks(t)
	mesh, _ := ca.New("cluster.local", time.Hour, nil)
	other, _ := ca.New("elsewhere", time.Hour, nil)
	serving := func(c *ca.CA) tls.ConnectionState {
		key, _ := ca.NewKey()
		leaf, err := c.Issue(&x509.Certificate{SerialNumber: big.NewInt(7), DNSNames: []string{"istiod.istio-system.svc"},
			NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, key.Public())
		if err != nil {
			t.Fatal(err)
		}
		return tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}
	}
	pool := x509.NewCertPool()
	pool.AddCert(mesh.Root())
	roots := StaticRoots(pool)
	for _, tt := range []struct {
		name, host, alt string
		cs              tls.ConnectionState
		ok              bool
	}{
		{"address named", "istiod.istio-system.svc", "", serving(mesh), true},
		{"address not named", "istiod-east.example", "", serving(mesh), false},
		{"alternate named", "istiod-east.example", "istiod.istio-system.svc", serving(mesh), true},
		{"alternate not named", "istiod-east.example", "istiod.example", serving(mesh), false},
		{"alternate named, wrong CA", "istiod-east.example", "istiod.istio-system.svc", serving(other), false},
	} {
		if err := roots.verifier(tt.host, tt.alt)(tt.cs); (err == nil) != tt.ok {
			t.Errorf("%s: %v, want success %v", tt.name, err, tt.ok)
		}
	}
}

// Roots from a file follow it: a new file is a new generation, garbage keeps the roots
// in force (and says so), a static bundle never changes.
func TestRootsFollowTheFile(t *testing.T) {
	ztest.NoLeaks(t)
	a, _ := ca.New("a", time.Hour, nil)
	b, _ := ca.New("b", time.Hour, nil)
	file := filepath.Join(t.TempDir(), "root-cert.pem")
	write := func(data string) { ztest.ReplaceFile(t, file, []byte(data)) }
	load := func() (*x509.CertPool, error) {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		certs, err := identity.ParsePEM(data)
		if err != nil || len(certs) == 0 {
			return nil, os.ErrInvalid
		}
		p := x509.NewCertPool()
		for _, c := range certs {
			p.AddCert(c)
		}
		return p, nil
	}
	r := NewRoots(file, load)
	if _, _, err := r.Current(); err == nil {
		t.Fatal("roots from a file that does not exist")
	}
	write(a.RootPEM())
	p1, g1, err := r.Current()
	if err != nil || p1 == nil {
		t.Fatalf("first read: %v", err)
	}
	if _, g, _ := r.Current(); g != g1 {
		t.Error("an unchanged file is a new generation")
	}
	write("garbage")
	if p, g, err := r.Current(); err == nil || g != g1 || !p.Equal(p1) {
		t.Errorf("garbage: generation %d (was %d), error %v", g, g1, err)
	}
	write(a.RootPEM() + b.RootPEM())
	if _, g, err := r.Current(); err != nil || g == g1 {
		t.Errorf("new bundle: generation %d (was %d), error %v", g, g1, err)
	}
}
