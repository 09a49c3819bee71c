package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// meta is what the image says of the build.
type meta struct {
	Version  string
	Revision string
	Created  time.Time
}

// binaryPath is where the chart's container expects ztunnel (Istio's image has it there).
const binaryPath = "/usr/local/bin/ztunnel"

// build assembles the image: an empty base, one layer with the binary (mode 0755, owned
// by root, dated m.Created), and a config the chart's pod runs as it is.
func build(bin []byte, m meta) (v1.Image, error) {
	layer, err := binaryLayer(bin, m.Created)
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, fmt.Errorf("adding the layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Created = v1.Time{Time: m.Created}
	cf.Config.Entrypoint = []string{binaryPath}
	cf.Config.WorkingDir = "/"
	cf.Config.User = "0" // the chart's pod runs as root with NET_ADMIN, SYS_ADMIN, NET_RAW
	cf.Config.Labels = map[string]string{
		"org.opencontainers.image.title":    "ztunnel",
		"org.opencontainers.image.source":   "https://github.com/ztunnel-go/ztunnel",
		"org.opencontainers.image.version":  m.Version,
		"org.opencontainers.image.revision": m.Revision,
		"org.opencontainers.image.created":  m.Created.Format(time.RFC3339),
	}
	cf.History = nil
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("setting the config: %w", err)
	}
	return mutate.CreatedAt(img, v1.Time{Time: m.Created})
}

// binaryLayer is a tar of the binary and its directories, every header fixed so that
// the same bytes give the same digest.
func binaryLayer(bin []byte, when time.Time) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, dir := range []string{"usr/", "usr/local/", "usr/local/bin/", "tmp/"} {
		mode := int64(0o755)
		if dir == "tmp/" {
			mode = 0o1777 // the chart mounts an emptyDir here; the directory must exist
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: mode, ModTime: when, Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: binaryPath[1:], Mode: 0o755, Size: int64(len(bin)), ModTime: when, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if _, err := tw.Write(bin); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
}

// write puts img in out/oci (an OCI image layout) and out/ztunnel.tar (a docker
// tarball tagged ref), and returns its digest.
func write(img v1.Image, out, ref string) (v1.Hash, error) {
	digest, err := img.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	dir := filepath.Join(out, "oci")
	if err := os.RemoveAll(dir); err != nil {
		return v1.Hash{}, err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("writing the OCI layout: %w", err)
	}
	if err := p.AppendImage(img); err != nil {
		return v1.Hash{}, fmt.Errorf("writing the OCI layout: %w", err)
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := tarball.WriteToFile(filepath.Join(out, "ztunnel.tar"), tag, img); err != nil {
		return v1.Hash{}, fmt.Errorf("writing the tarball: %w", err)
	}
	return digest, nil
}
