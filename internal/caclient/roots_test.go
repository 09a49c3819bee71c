package caclient_test

import (
	"crypto/x509"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ztunnel-go/ztunnel/internal/caclient"
	"github.com/ztunnel-go/ztunnel/internal/config"
	"github.com/ztunnel-go/ztunnel/internal/istiod"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

func replace(t *testing.T, path, data string) { ztest.ReplaceFile(t, path, []byte(data)) }

// CA_ROOT_CA rotated on disk keeps certificates coming without a restart: garbage is
// refused (the roots in force stay), the new bundle rebuilds the channel, and the CA
// restarted with a certificate from the new root is trusted. Pins Rust's CaClient
// fetch_certificate (take_dirty, rebuild_channel).
func TestRootRotationOnDisk(t *testing.T) {
	ztest.NoLeaks(t)
	f := ztest.NewFakeCA(t)
	file := filepath.Join(t.TempDir(), "root-cert.pem")
	replace(t, file, f.ServePEM)
	c, _ := client(t, f, func(c *caclient.Config) { c.Roots = istiod.NewRoots(file, config.RootCert{File: file}.Load) })
	if _, err := fetch(t, c, httpbin); err != nil {
		t.Fatal(err)
	}
	replace(t, file, "not PEM at all")
	if _, err := fetch(t, c, httpbin); err != nil {
		t.Fatalf("a root file that does not parse broke the CA: %v", err)
	}
	next := f.NextServing(t)
	replace(t, file, f.ServePEM+next)
	if _, err := fetch(t, c, httpbin); err != nil {
		t.Fatalf("under the rotation bundle: %v", err)
	}
	f.SwitchServing(t)
	// The CSR in flight when the CA went down may fail, as with any CA restart; the
	// certificate manager retries it.
	var err error
	for range 3 {
		if _, err = fetch(t, c, httpbin); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("after the CA's certificate moved to the new root: %v", err)
	}
	// Without the new root, that CA is not trusted: the check is real.
	stale, _ := client(t, f, func(c *caclient.Config) { c.Roots = istiod.StaticRoots(pool(t, f.ServePEM)) })
	if _, err := fetch(t, stale, httpbin); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client with only the old root reached the rotated CA: %v", err)
	}
}

func pool(t *testing.T, pemData string) *x509.CertPool {
	p, err := config.RootCert{PEM: pemData}.Load()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
