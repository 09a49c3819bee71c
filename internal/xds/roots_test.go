package xds_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	discoverypb "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"

	"github.com/ztunnel-go/ztunnel/internal/config"
	"github.com/ztunnel-go/ztunnel/internal/istiod"
	"github.com/ztunnel-go/ztunnel/internal/xds"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

func writeAtomically(t *testing.T, path, data string) { ztest.ReplaceFile(t, path, []byte(data)) }

// The mesh root rotates on disk while ztunnel runs: a bundle that no longer parses is
// refused (the stream stays up under the roots in force), the new bundle rebuilds the
// connection and resumes from the versions held, and istiod restarting with a
// certificate from the new root is reached again. Rust: RootCertManager (for the CA);
// ours does xDS too.
func TestRootRotationOnDisk(t *testing.T) {
	ztest.NoLeaks(t)
	fake := ztest.NewFakeXDS(t, true)
	fake.Set(xds.AddressType, "Kubernetes//Pod/default/a", workload("a", "10.0.0.1"))
	file := filepath.Join(t.TempDir(), "root-cert.pem")
	writeAtomically(t, file, fake.ServePEM)
	h := start(t, fake, func(c *xds.ClientConfig) {
		c.Roots, c.RootsInterval = istiod.NewRoots(file, config.RootCert{File: file}.Load), 10*time.Millisecond
	})
	ztest.Eventually(t, "first sync", func() bool { return h.has("10.0.0.1") })
	streams := func() int { return len(opening(fake)) }
	before := streams()

	writeAtomically(t, file, "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n")
	if !h.logs.WaitFor("XDS_ROOT_CA not re-read") {
		t.Fatalf("no warning for a root file that does not parse:\n%s", h.logs)
	}
	fake.Set(xds.AddressType, "Kubernetes//Pod/default/b", workload("b", "10.0.0.2"))
	ztest.Eventually(t, "the stream still served under the roots in force", func() bool { return h.has("10.0.0.2") })
	if n := streams(); n != before {
		t.Errorf("a root file that does not parse reopened the stream (%d → %d)", before, n)
	}

	newRoot := fake.NextServing(t)
	writeAtomically(t, file, fake.ServePEM+newRoot) // old and new, as istiod publishes during a rotation
	ztest.Eventually(t, "the stream reopened under the new bundle", func() bool { return streams() > before })
	last := opening(fake)[len(opening(fake))-1]
	if !strings.Contains(strings.Join(keys(last.InitialResourceVersions), ","), "Kubernetes//Pod/default/b") {
		t.Errorf("the reopened stream did not resume from the versions held: %v", last.InitialResourceVersions)
	}

	fake.SwitchServing() // istiod restarts with a certificate from the new root
	fake.Set(xds.AddressType, "Kubernetes//Pod/default/c", workload("c", "10.0.0.3"))
	ztest.Eventually(t, "istiod reached again under the new root", func() bool { return h.has("10.0.0.3") })
}

// opening are the first requests of each stream for addresses.
func opening(f *ztest.FakeXDS) []*discoverypb.DeltaDiscoveryRequest {
	var out []*discoverypb.DeltaDiscoveryRequest
	for _, r := range f.Requests() {
		if r.TypeUrl == xds.AddressType && r.ResponseNonce == "" && len(r.ResourceNamesSubscribe) == 0 {
			out = append(out, r)
		}
	}
	return out
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
