package identity_test

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ztunnel-go/ztunnel/internal/ca"
	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParse(t *testing.T) {
	ztest.NoLeaks(t)
	tests := []struct {
		in   string
		want identity.Identity
		err  error
	}{
		{"spiffe://cluster.local/ns/default/sa/httpbin", identity.New("cluster.local", "default", "httpbin"), nil},
		{"spiffe://td-1.example_x/ns/My.NS/sa/sa_1-a", identity.New("td-1.example_x", "My.NS", "sa_1-a"), nil},
		{"SPIFFE://cluster.local/ns/a/sa/b", identity.Identity{}, identity.ErrScheme},
		{"https://cluster.local/ns/a/sa/b", identity.Identity{}, identity.ErrScheme},
		{"cluster.local/ns/a/sa/b", identity.Identity{}, identity.ErrScheme},
		{"spiffe://cluster.local/ns/a/sa/b/extra", identity.Identity{}, identity.ErrPath},
		{"spiffe://cluster.local/ns/a", identity.Identity{}, identity.ErrPath},
		{"spiffe://cluster.local/sa/b/ns/a", identity.Identity{}, identity.ErrPath},
		{"spiffe://cluster.local/ns/a/sa/", identity.Identity{}, identity.ErrSegment},
		{"spiffe://cluster.local/ns/../sa/b", identity.Identity{}, identity.ErrSegment},
		{"spiffe://td/ns/x/sa/y%00z", identity.Identity{}, identity.ErrSegment},
		{"spiffe://td/ns/x/sa/y\x00z", identity.Identity{}, identity.ErrSegment},
		{"spiffe://td/ns/x/sa/y z", identity.Identity{}, identity.ErrSegment},
		{"spiffe://Cluster.Local/ns/a/sa/b", identity.Identity{}, identity.ErrTrustDomain},
		{"spiffe://td:8080/ns/a/sa/b", identity.Identity{}, identity.ErrTrustDomain},
		{"spiffe:///ns/a/sa/b", identity.Identity{}, identity.ErrTrustDomain},
	}
	for _, tt := range tests {
		got, err := identity.Parse(tt.in)
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("Parse(%q) = %v, %v; want %v, %v", tt.in, got, err, tt.want, tt.err)
		}
		if tt.err == nil && got.String() != tt.in {
			t.Errorf("String() = %q, want %q", got.String(), tt.in)
		}
	}
	if (identity.Identity{}).String() != "" || !(identity.Identity{}).IsZero() {
		t.Error("zero identity should print empty")
	}
}

var (
	httpbin = identity.New("cluster.local", "default", "httpbin")
	now     = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
)

func testCA(t *testing.T) *ca.CA {
	t.Helper()
	c, err := ca.New("cluster.local", 24*time.Hour, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// issue signs a leaf for id valid [now-1m, now+ttl), and returns [leafPEM, rootPEM].
func issue(t *testing.T, c *ca.CA, id identity.Identity, mutate func(*x509.Certificate)) ([]string, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ca.NewKey()
	tmpl := ca.LeafTemplate(id, now, 24*time.Hour)
	if mutate != nil {
		mutate(tmpl)
	}
	leaf, err := c.Issue(tmpl, key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return []string{string(identity.EncodePEM(leaf)), c.RootPEM()}, key
}

func TestNewCert(t *testing.T) {
	ztest.NoLeaks(t)
	c := testCA(t)
	chain, key := issue(t, c, httpbin, nil)
	cert, err := identity.NewCert(httpbin, key, chain, now)
	if err != nil {
		t.Fatal(err)
	}
	if cert.ID != httpbin || len(cert.Roots) != 1 || len(cert.TLS.Certificate) != 1 || !cert.ValidAt(now) {
		t.Errorf("cert = %+v", cert)
	}
	if want := now.Add(-time.Minute).Add((24*time.Hour + time.Minute) / 2); !cert.HalfLife().Equal(want) {
		t.Errorf("half life %v, want %v", cert.HalfLife(), want)
	}
}

func TestNewCertRefuses(t *testing.T) {
	ztest.NoLeaks(t)
	c, other := testCA(t), testCA(t)
	otherKey, _ := ca.NewKey()
	sleep := identity.New("cluster.local", "foo", "sleep")
	tests := []struct {
		name  string
		chain func() ([]string, *ecdsa.PrivateKey)
		at    time.Time
		want  string
	}{
		{"wrong identity", func() ([]string, *ecdsa.PrivateKey) { return issue(t, c, sleep, nil) }, now, "certificate identity differs"},
		{"key mismatch", func() ([]string, *ecdsa.PrivateKey) { ch, _ := issue(t, c, httpbin, nil); return ch, otherKey }, now, "does not match the private key"},
		{"expired", func() ([]string, *ecdsa.PrivateKey) { return issue(t, c, httpbin, nil) }, now.Add(25 * time.Hour), "verifying chain"},
		{"not yet valid", func() ([]string, *ecdsa.PrivateKey) { return issue(t, c, httpbin, nil) }, now.Add(-time.Hour), "verifying chain"},
		{"other root", func() ([]string, *ecdsa.PrivateKey) {
			ch, k := issue(t, c, httpbin, nil)
			return []string{ch[0], other.RootPEM()}, k
		}, now, "verifying chain"},
		{"leaf only", func() ([]string, *ecdsa.PrivateKey) { ch, k := issue(t, c, httpbin, nil); return ch[:1], k }, now, "want a leaf and at least one root"},
		{"garbage", func() ([]string, *ecdsa.PrivateKey) { return []string{"hello", "world"}, otherKey }, now, "not PEM"},
		{"two URI SANs", func() ([]string, *ecdsa.PrivateKey) {
			return issue(t, c, httpbin, func(x *x509.Certificate) {
				u, _ := url.Parse("spiffe://cluster.local/ns/foo/sa/sleep")
				x.URIs = append(x.URIs, u)
			})
		}, now, "exactly one URI SAN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chain, key := tt.chain()
			_, err := identity.NewCert(httpbin, key, chain, tt.at)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewCert = %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func TestSeveralRootsInLastElement(t *testing.T) {
	ztest.NoLeaks(t)
	c, next := testCA(t), testCA(t)
	chain, key := issue(t, c, httpbin, nil)
	chain[1] = next.RootPEM() + chain[1] // a bundle during root rotation
	cert, err := identity.NewCert(httpbin, key, chain, now)
	if err != nil || len(cert.Roots) != 2 {
		t.Fatalf("NewCert = %v, roots %d", err, len(cert.Roots))
	}
}

func TestChainWithIntermediate(t *testing.T) {
	ztest.NoLeaks(t)
	root := testCA(t)
	interKey, _ := ca.NewKey()
	inter, err := root.Issue(&x509.Certificate{SerialNumber: big.NewInt(7), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(48 * time.Hour)}, interKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	leafKey, _ := ca.NewKey()
	der, err := x509.CreateCertificate(rand.Reader, ca.LeafTemplate(httpbin, now, time.Hour), inter, leafKey.Public(), interKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	chain := []string{string(identity.EncodePEM(leaf)), string(identity.EncodePEM(inter)), root.RootPEM()}
	cert, err := identity.NewCert(httpbin, leafKey, chain, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(cert.Intermediates) != 1 || len(cert.TLS.Certificate) != 2 || len(cert.Roots) != 1 {
		t.Errorf("intermediates %d, TLS chain %d, roots %d; want 1, 2, 1", len(cert.Intermediates), len(cert.TLS.Certificate), len(cert.Roots))
	}
	// Without the intermediate the chain does not verify.
	if _, err := identity.NewCert(httpbin, leafKey, []string{chain[0], chain[2]}, now); err == nil {
		t.Error("leaf accepted without its intermediate")
	}
}
