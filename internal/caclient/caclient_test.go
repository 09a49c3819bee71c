package caclient_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ztunnel-go/ztunnel/internal/caclient"
	"github.com/ztunnel-go/ztunnel/internal/config"
	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/istiod"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var httpbin = identity.New("cluster.local", "default", "httpbin")

// client returns a client of f whose token is in a file the test can rewrite.
func client(t *testing.T, f *ztest.FakeCA, mutate func(*caclient.Config)) (*caclient.Client, string) {
	t.Helper()
	tokenFile := filepath.Join(t.TempDir(), "istio-token")
	if err := os.WriteFile(tokenFile, []byte("token-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := caclient.Config{
		Address: f.Address, Roots: istiod.NewRoots("", config.RootCert{PEM: f.ServePEM}.Load), Token: config.Token{File: tokenFile}.Read,
		ClusterID: "east", Headers: []istiod.Header{{Name: "x-tenant", Value: "t1"}}, TTL: 12 * time.Hour,
		Impersonate: true,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := caclient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, tokenFile
}

func fetch(t *testing.T, c *caclient.Client, id identity.Identity) (*identity.Cert, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.Fetch(ctx, id)
}

func TestCSRAndMetadata(t *testing.T) {
	ztest.NoLeaks(t)
	f := ztest.NewFakeCA(t)
	c, tokenFile := client(t, f, nil)
	cert, err := fetch(t, c, httpbin)
	if err != nil {
		t.Fatal(err)
	}
	if cert.ID != httpbin || !cert.Roots[0].Equal(f.CA.Root()) {
		t.Errorf("cert for %v with root %v", cert.ID, cert.Roots[0].Subject)
	}
	reqs := f.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	if len(r.CSR.URIs) != 1 || r.CSR.URIs[0].String() != httpbin.String() || len(r.CSR.DNSNames)+len(r.CSR.EmailAddresses)+len(r.CSR.IPAddresses) != 0 {
		t.Errorf("CSR names: URIs %v DNS %v", r.CSR.URIs, r.CSR.DNSNames)
	}
	if r.CSR.Subject.String() != "" {
		t.Errorf("CSR subject %q, want empty (no CN)", r.CSR.Subject)
	}
	want := map[string]string{"authorization": "Bearer token-1", "clusterid": "east", "x-tenant": "t1"}
	for k, v := range want {
		if got := r.MD.Get(k); len(got) != 1 || got[0] != v {
			t.Errorf("metadata %s = %v, want %q", k, got, v)
		}
	}
	if r.Impersonated != httpbin.String() || r.TTLSeconds != 12*3600 {
		t.Errorf("ImpersonatedIdentity %q, TTL %d", r.Impersonated, r.TTLSeconds)
	}

	// The token file is read on every call (Kubernetes rotates it).
	os.WriteFile(tokenFile, []byte("token-2"), 0o600)
	if _, err := fetch(t, c, httpbin); err != nil {
		t.Fatal(err)
	}
	if got := f.Requests()[1].MD.Get("authorization"); got[0] != "Bearer token-2" {
		t.Errorf("second call authorization %v", got)
	}
}

func TestNoImpersonationInDedicatedMode(t *testing.T) {
	ztest.NoLeaks(t)
	f := ztest.NewFakeCA(t)
	c, _ := client(t, f, func(cfg *caclient.Config) { cfg.Impersonate = false; cfg.Token = config.Token{Literal: "lit"}.Read })
	if _, err := fetch(t, c, httpbin); err != nil {
		t.Fatal(err)
	}
	r := f.Requests()[0]
	if r.Impersonated != "" || r.MD.Get("authorization")[0] != "Bearer lit" {
		t.Errorf("impersonated %q auth %v", r.Impersonated, r.MD.Get("authorization"))
	}
}

func TestBadAnswersAndFaults(t *testing.T) {
	ztest.NoLeaks(t)
	tests := []struct {
		name  string
		setup func(*ztest.FakeCA, *caclient.Config)
		want  string
	}{
		{"wrong identity", func(f *ztest.FakeCA, _ *caclient.Config) { f.AnswerAs(identity.New("cluster.local", "foo", "sleep")) }, "certificate identity differs"},
		{"garbage", func(f *ztest.FakeCA, _ *caclient.Config) { f.Garbage(true) }, "not PEM"},
		{"CA error", func(f *ztest.FakeCA, _ *caclient.Config) { f.Fail(errors.New("quota exceeded")) }, "quota exceeded"},
		{"CA down", func(f *ztest.FakeCA, _ *caclient.Config) { f.Stop() }, "requesting certificate"},
		{"missing token file", func(_ *ztest.FakeCA, c *caclient.Config) { c.Token = config.Token{File: "/nonexistent/token"}.Read }, "reading token file"},
		{"untrusted CA", func(_ *ztest.FakeCA, c *caclient.Config) {
			c.Roots = istiod.NewRoots("", config.RootCert{PEM: ztest.NewFakeCA(t).ServePEM}.Load)
		}, "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := ztest.NewFakeCA(t)
			c, _ := client(t, f, func(cfg *caclient.Config) { tt.setup(f, cfg) })
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			cert, err := c.Fetch(ctx, httpbin)
			if err == nil || !strings.Contains(err.Error(), tt.want) || cert != nil {
				t.Errorf("Fetch = %v, %v; want error containing %q", cert, err, tt.want)
			}
			t.Log(err)
		})
	}
}

func TestWrongIdentityIsTyped(t *testing.T) {
	ztest.NoLeaks(t)
	f := ztest.NewFakeCA(t)
	f.AnswerAs(identity.New("cluster.local", "foo", "sleep"))
	c, _ := client(t, f, nil)
	if _, err := fetch(t, c, httpbin); !errors.Is(err, identity.ErrWrongIdentity) {
		t.Errorf("err = %v, want ErrWrongIdentity", err)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	ztest.NoLeaks(t)
	for _, cfg := range []caclient.Config{
		{Address: "http://istiod:15012", Roots: istiod.NewRoots("", config.RootCert{System: true}.Load)},
		{Address: "istiod:15012", Roots: istiod.NewRoots("", config.RootCert{System: true}.Load)},
		{Address: "https://istiod:15012", Roots: istiod.NewRoots("", config.RootCert{File: "/nonexistent/root.pem"}.Load)},
		{Address: "https://istiod:15012", Roots: istiod.NewRoots("", config.RootCert{PEM: "-----BEGIN CERTIFICATE-----\nxx"}.Load)},
	} {
		if c, err := caclient.New(cfg); err == nil {
			c.Close()
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

func TestSystemRoots(t *testing.T) {
	ztest.NoLeaks(t)
	c, err := caclient.New(caclient.Config{Address: "https://istiod.istio-system.svc:15012", Roots: istiod.NewRoots("", config.RootCert{System: true}.Load)})
	if err != nil {
		t.Fatalf("SYSTEM roots: %v", err)
	}
	c.Close()
	c.Close() // idempotent
}
