package istiod

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
)

// Roots are the trusted roots of istiod's serving certificate. Roots from a file are
// re-read when the file changes (Rust's RootCertManager), so a mesh root rotated on
// disk (istio-ca-root-cert's ConfigMap) needs no restart: the connections' owners see
// the new generation, rebuild their gRPC channel under it, and xDS resumes from the
// versions it holds. A file that no longer parses keeps the roots in force. Safe for
// concurrent use.
type Roots struct {
	file string                         // "": inline PEM or the system pool, never re-read
	load func() (*x509.CertPool, error) // reads the bundle

	mu   sync.Mutex // guards the fields below
	pool *x509.CertPool
	seen fs.FileInfo // the file as last read
	gen  uint64      // bumped on every new pool
	err  error       // why the file as it is now was not taken; nil when it was
}

// NewRoots reads nothing yet: Current does, on first use. file is the bundle's path
// when it is a file ("" otherwise), load parses it.
func NewRoots(file string, load func() (*x509.CertPool, error)) *Roots {
	return &Roots{file: file, load: load}
}

// StaticRoots are roots that never change (tests, embedders).
func StaticRoots(pool *x509.CertPool) *Roots {
	return &Roots{load: func() (*x509.CertPool, error) { return pool, nil }}
}

// Current returns the roots in force and their generation, first re-reading the file
// if it changed. err is non-nil when the file as it is now was refused (then the pool
// is the one in force before, if any) or when there never were roots.
func (r *Roots) Current() (*x509.CertPool, uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pool != nil && !r.changedLocked() {
		return r.pool, r.gen, r.err
	}
	fi, _ := os.Stat(r.file) // nil for inline roots; a missing file fails load below
	pool, err := r.load()
	r.seen = fi
	if err != nil {
		r.err = err
		if r.pool == nil {
			return nil, 0, err
		}
		return r.pool, r.gen, fmt.Errorf("%w; the roots read before stay in force", err)
	}
	r.pool, r.err = pool, nil
	r.gen++
	return r.pool, r.gen, nil
}

// changedLocked: the file was replaced (a ConfigMap's symlink swap) or rewritten.
func (r *Roots) changedLocked() bool {
	if r.file == "" {
		return false
	}
	fi, err := os.Stat(r.file)
	prev := r.seen
	switch {
	case err != nil:
		return prev != nil // gone: Current tries, fails, and keeps the roots in force
	case prev == nil:
		return true
	}
	return !os.SameFile(prev, fi) || !fi.ModTime().Equal(prev.ModTime()) || fi.Size() != prev.Size()
}

// verifier checks istiod's certificate against the roots in force at each handshake,
// and its name against host, or alt when host does not match (ALT_XDS_HOSTNAME,
// ALT_CA_HOSTNAME: Rust's AltHostnameVerifier).
func (r *Roots) verifier(host, alt string) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("istiod presented no certificate")
		}
		pool, _, err := r.Current()
		if pool == nil {
			return err
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		leaf := cs.PeerCertificates[0]
		opts := x509.VerifyOptions{Roots: pool, Intermediates: inter, DNSName: host}
		if _, err := leaf.Verify(opts); err != nil {
			var name x509.HostnameError
			if alt == "" || !errors.As(err, &name) {
				return fmt.Errorf("verifying istiod's certificate: %w", err)
			}
			opts.DNSName = alt
			if _, err := leaf.Verify(opts); err != nil {
				return fmt.Errorf("verifying istiod's certificate (for %s, or %s): %w", host, alt, err)
			}
		}
		return nil
	}
}
