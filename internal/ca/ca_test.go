package ca_test

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ztunnel-go/ztunnel/internal/ca"
	"github.com/ztunnel-go/ztunnel/internal/caclient"
	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var httpbin = identity.New("cluster.local", "default", "httpbin")

func TestSignCSR(t *testing.T) {
	ztest.NoLeaks(t)
	c, err := ca.New("cluster.local", time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	key, csr, err := caclient.NewCSR(httpbin)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := c.SignCSR(csr, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := identity.NewCert(httpbin, key, chain, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if life := cert.NotAfter().Sub(time.Now()); life < 119*time.Minute || life > 2*time.Hour {
		t.Errorf("lifetime %v, want the requested 2h", life)
	}
	if cert.Leaf.Subject.String() != "" || cert.Roots[0].Subject.Organization[0] != "cluster.local" {
		t.Errorf("leaf subject %q, root %v", cert.Leaf.Subject, cert.Roots[0].Subject)
	}
}

func TestSignCSRRefuses(t *testing.T) {
	ztest.NoLeaks(t)
	c, _ := ca.New("cluster.local", time.Hour, nil)
	key, _ := ca.NewKey()
	twoURIs := func() []byte {
		a, _ := url.Parse(httpbin.String())
		b, _ := url.Parse("spiffe://cluster.local/ns/foo/sa/sleep")
		der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{URIs: []*url.URL{a, b}}, key)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	}
	badID := func() []byte {
		u, _ := url.Parse("spiffe://cluster.local/ns/a/sa/b/c")
		der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{URIs: []*url.URL{u}}, key)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	}
	for _, tt := range []struct {
		name string
		csr  []byte
		want string
	}{
		{"not PEM", []byte("hello"), "not a PEM"},
		{"wrong block", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}), "not a PEM"},
		{"garbage DER", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte{1, 2}}), "parsing CSR"},
		{"two URIs", twoURIs(), "2 URI SANs"},
		{"bad identity", badID(), "identity"},
	} {
		if _, err := c.SignCSR(tt.csr, 0); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want error containing %q", tt.name, err, tt.want)
		}
	}
}

func TestRootStableForProcessLifetime(t *testing.T) {
	ztest.NoLeaks(t)
	c, _ := ca.New("cluster.local", time.Hour, nil)
	root := c.RootPEM()
	for range 3 {
		key, csr, _ := caclient.NewCSR(httpbin)
		chain, err := c.SignCSR(csr, 0)
		if err != nil || chain[1] != root {
			t.Fatalf("root changed or error: %v", err)
		}
		if _, err := identity.NewCert(httpbin, key, chain, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
}
