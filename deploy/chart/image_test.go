//go:build linux

package chart_test

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

func TestMain(m *testing.M) {
	ztest.ContainerInit() // a container started by a test: becomes ztunnel here
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// built is the image the tests run, built once per test binary by deploy/image.
var built struct {
	once       sync.Once
	dir        string // the build's output and the unpacked root
	rootfs     string
	entrypoint []string
	tarball    string // docker-load-able
	tarSize    int64
	err        error
}

// image builds the image with the README's command and unpacks its filesystem, as a
// runtime does before it starts a container.
func image(t *testing.T) (rootfs string, entrypoint []string) {
	t.Helper()
	built.once.Do(func() { built.err = buildImage() })
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.rootfs, built.entrypoint
}

func buildImage() error {
	dir, err := os.MkdirTemp("", "ztunnel-image-")
	if err != nil {
		return err
	}
	built.dir = dir
	cmd := exec.Command("go", "run", "./deploy/image", "-out", filepath.Join(dir, "out"))
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the image: %v\n%s", err, out)
	}
	tarPath := filepath.Join(dir, "out", "ztunnel.tar")
	img, err := tarball.ImageFromPath(tarPath, nil)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	st, err := os.Stat(tarPath)
	if err != nil {
		return err
	}
	built.entrypoint, built.tarball, built.tarSize = cf.Config.Entrypoint, tarPath, st.Size()
	built.rootfs = filepath.Join(dir, "rootfs")
	rc := mutate.Extract(img)
	defer rc.Close()
	return untar(rc, built.rootfs)
}

// untar writes the image's directories and regular files (all it has) under root.
func untar(r io.Reader, root string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		path := filepath.Join(root, filepath.Clean("/"+h.Name))
		if !strings.HasPrefix(path, root+"/") {
			return fmt.Errorf("image entry %q leaves the root", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(path, 0o755); err != nil {
				return err
			}
			err = os.Chmod(path, h.FileInfo().Mode()&os.ModePerm|h.FileInfo().Mode()&os.ModeSticky)
		case tar.TypeReg:
			err = writeFile(path, tr, h.FileInfo().Mode().Perm())
		default:
			err = fmt.Errorf("image entry %q of type %c: the image should hold only files and directories", h.Name, h.Typeflag)
		}
		if err != nil {
			return err
		}
	}
}

func writeFile(path string, r io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
