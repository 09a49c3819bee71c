package main

import (
	"archive/tar"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

var testMeta = meta{Version: "1.2.3", Revision: "0123456789abcdef0123456789abcdef01234567", Created: time.Unix(1764547200, 0).UTC()}

// The same binary and commit give the same digest, whatever the clock or the run.
func TestImageIsReproducible(t *testing.T) {
	ztest.NoLeaks(t)
	bin := []byte("\x7fELF not really a binary")
	a, err := build(bin, testMeta)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // a second later, nothing may differ
	b, err := build(bin, testMeta)
	if err != nil {
		t.Fatal(err)
	}
	da, _ := a.Digest()
	db, _ := b.Digest()
	if da != db {
		t.Errorf("digests differ: %v, %v", da, db)
	}
	other := testMeta
	other.Revision = "fedcba9876543210fedcba9876543210fedcba98"
	c, _ := build(bin, other)
	if dc, _ := c.Digest(); dc == da {
		t.Error("another revision gave the same digest")
	}
}

// The image runs as the chart's container does: entrypoint /usr/local/bin/ztunnel
// (args from the pod), root, cwd /, a /tmp to mount over; labels say the build.
func TestImageConfigAndLayer(t *testing.T) {
	ztest.NoLeaks(t)
	img, err := build([]byte("binary"), testMeta)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if strings.Join(c.Entrypoint, " ") != "/usr/local/bin/ztunnel" || c.Cmd != nil || c.User != "0" || c.WorkingDir != "/" || cf.OS != "linux" {
		t.Errorf("config %+v on %s", c, cf.OS)
	}
	if c.Labels["org.opencontainers.image.version"] != "1.2.3" || c.Labels["org.opencontainers.image.revision"] != testMeta.Revision {
		t.Errorf("labels %v", c.Labels)
	}
	if !cf.Created.Time.Equal(testMeta.Created) {
		t.Errorf("created %v, want the commit's time %v", cf.Created, testMeta.Created)
	}
	layers, _ := img.Layers()
	if len(layers) != 1 {
		t.Fatalf("%d layers, want 1", len(layers))
	}
	rc, _ := layers[0].Uncompressed()
	defer rc.Close()
	files := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = h
	}
	if h := files["usr/local/bin/ztunnel"]; h == nil || h.Mode != 0o755 || h.Uid != 0 || !h.ModTime.Equal(testMeta.Created) {
		t.Errorf("binary entry %+v", h)
	}
	if h := files["tmp/"]; h == nil || h.Mode != 0o1777 {
		t.Errorf("tmp entry %+v", h)
	}
}

// write gives an OCI layout and a tarball that read back as the same image.
func TestImageWritten(t *testing.T) {
	ztest.NoLeaks(t)
	img, _ := build([]byte("binary"), testMeta)
	out := t.TempDir()
	digest, err := write(img, out, "ghcr.io/ztunnel-go/ztunnel:1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	p, err := layout.FromPath(filepath.Join(out, "oci"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Image(digest); err != nil {
		t.Errorf("OCI layout lacks %v: %v", digest, err)
	}
	fromTar, err := tarball.ImageFromPath(filepath.Join(out, "ztunnel.tar"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := fromTar.Digest(); d != digest {
		t.Errorf("tarball image %v, want %v", d, digest)
	}
}

// The binary the image carries is static and says its version and revision.
func TestBinaryStamped(t *testing.T) {
	ztest.NoLeaks(t)
	bin := filepath.Join(t.TempDir(), "ztunnel")
	if err := buildBinary(bin, testMeta, "../..", false); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "1.2.3") || !strings.Contains(string(out), testMeta.Revision) {
		t.Errorf("ztunnel version: %s (%v)", out, err)
	}
	if out, _ := exec.Command("file", bin).Output(); len(out) > 0 && !strings.Contains(string(out), "statically linked") {
		t.Errorf("not static: %s", out)
	}
}

// The FIPS flavour's binary runs Go's FIPS 140-3 module without being told to.
func TestFIPSBinary(t *testing.T) {
	ztest.NoLeaks(t)
	bin := filepath.Join(t.TempDir(), "ztunnel")
	if err := buildBinary(bin, testMeta, "../..", true); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "version")
	cmd.Env = []string{} // no GODEBUG from the test's environment
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "crypto: go-fips140") {
		t.Errorf("FIPS build's ztunnel version: %s (%v)", out, err)
	}
}
