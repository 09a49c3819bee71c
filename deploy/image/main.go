// Command image builds ztunnel's OCI image without a daemon or a registry: the static
// binary in one layer on an empty base, entrypoint /usr/local/bin/ztunnel, written as an
// OCI layout and as a tarball `docker load` and `podman load` take.
//
// The image is reproducible: the same commit gives the same digest. The binary is
// built with -trimpath and an empty build id, the layer's file has the commit's time,
// and so does the image's creation date (SOURCE_DATE_EPOCH overrides it).
//
//	go run ./deploy/image -out /tmp/ztunnel-image [-version 1.0.0] [-fips]
//
// -fips builds the FIPS flavour, tagged <version>-fips: the binary is built with
// GOFIPS140=latest, so Go's FIPS 140-3 module is linked and on from the first
// instruction (GODEBUG fips140=on by default); crypto/tls then negotiates only approved
// algorithms (P-256/P-384 and ML-KEM hybrids, AES-GCM), and `ztunnel version` says
// "crypto: go-fips140". Rust's counterpart is its boring (BoringSSL FIPS) build. A plain
// image runs the same module with GODEBUG=fips140=on in its environment.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func main() {
	out := flag.String("out", "ztunnel-image", "directory for the OCI layout (oci/) and the tarball (ztunnel.tar)")
	version := flag.String("version", "", "image and binary version (default: 0.0.0-<short revision>)")
	binary := flag.String("binary", "", "a static ztunnel binary to package instead of building one")
	fips := flag.Bool("fips", false, "build the FIPS 140-3 flavour (GOFIPS140=latest), tagged <version>-fips")
	flag.Parse()
	if err := run(*out, *version, *binary, *fips); err != nil {
		log.Fatalf("image: %v", err)
	}
}

func run(out, version, binary string, fips bool) error {
	m, err := gitMeta()
	if err != nil {
		return err
	}
	if version != "" {
		m.Version = version
	}
	if fips {
		m.Version += "-fips"
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if binary == "" {
		binary = filepath.Join(out, "ztunnel")
		if err := buildBinary(binary, m, ".", fips); err != nil {
			return err
		}
	}
	bin, err := os.ReadFile(binary)
	if err != nil {
		return err
	}
	img, err := build(bin, m)
	if err != nil {
		return err
	}
	digest, err := write(img, out, "ghcr.io/ztunnel-go/ztunnel:"+m.Version)
	if err != nil {
		return err
	}
	fmt.Printf("%s %s\n", digest, filepath.Join(out, "ztunnel.tar"))
	return nil
}

// gitMeta reads the revision and commit time of the checkout; SOURCE_DATE_EPOCH sets
// the time instead (reproducible-builds.org).
func gitMeta() (meta, error) {
	rev, err := git("rev-parse", "HEAD")
	if err != nil {
		return meta{}, fmt.Errorf("reading the git revision: %w", err)
	}
	when := os.Getenv("SOURCE_DATE_EPOCH")
	if when == "" {
		if when, err = git("log", "-1", "--format=%ct"); err != nil {
			return meta{}, fmt.Errorf("reading the commit time: %w", err)
		}
	}
	secs, err := strconv.ParseInt(when, 10, 64)
	if err != nil {
		return meta{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", when, err)
	}
	return meta{Version: "0.0.0-" + rev[:12], Revision: rev, Created: time.Unix(secs, 0).UTC()}, nil
}

func git(args ...string) (string, error) {
	out, err := exec.Command("git", args...).Output()
	return strings.TrimSpace(string(out)), err
}

// buildTags leave out what ztunnel links but never runs. grpcnotrace drops grpc's
// golang.org/x/net/trace and with it html/template, whose reflection keeps every
// exported method of every type: the binary goes from 20.0 to 15.5 MB, and on kernels
// that map whole page-cache folios (6.18 on ext4) each ztunnel's RssFile with it.
const buildTags = "grpcnotrace"

// buildBinary builds the static binary of the module at dir, stamped with the version
// and revision; fips links Go's FIPS 140-3 module, on by default.
func buildBinary(path string, m meta, dir string, fips bool) error {
	const pkg = "github.com/ztunnel-go/ztunnel/internal/version"
	ldflags := fmt.Sprintf("-s -w -buildid= -X %s.Version=%s -X %s.Revision=%s", pkg, m.Version, pkg, m.Revision)
	cmd := exec.Command("go", "build", "-trimpath", "-tags", buildTags, "-ldflags", ldflags, "-o", path, "./cmd/ztunnel")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if fips {
		cmd.Env = append(cmd.Env, "GOFIPS140=latest")
	}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building the binary: %w", err)
	}
	return nil
}
