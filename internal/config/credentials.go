package config

// The credentials for istiod are read where they are used, not at Load: Kubernetes
// rotates the projected token, and the roots may be mounted after start-up. istiod and
// caclient take these methods as functions, so they need not import config.

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/ztunnel-go/ztunnel/internal/identity"
)

// Read returns the literal token, or the trimmed content of the token file.
func (t Token) Read() (string, error) {
	if t.Literal != "" {
		return t.Literal, nil
	}
	b, err := os.ReadFile(t.File)
	if err != nil {
		return "", fmt.Errorf("reading token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("token file %s is empty", t.File)
	}
	return tok, nil
}

// Load reads a trust bundle: the system pool, inline PEM, or a PEM file.
func (r RootCert) Load() (*x509.CertPool, error) {
	if r.System {
		return x509.SystemCertPool()
	}
	certs, err := r.Certs()
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// Certs reads the bundle's certificates, inline or from the file (none for SYSTEM).
func (r RootCert) Certs() ([]*x509.Certificate, error) {
	if r.System {
		return nil, nil
	}
	data := []byte(r.PEM)
	if r.PEM == "" {
		var err error
		if data, err = os.ReadFile(r.File); err != nil {
			return nil, fmt.Errorf("reading root certificates: %w", err)
		}
	}
	certs, err := identity.ParsePEM(data)
	if err != nil {
		return nil, fmt.Errorf("root certificates: %w", err)
	}
	if len(certs) == 0 {
		return nil, errors.New("no root certificates")
	}
	return certs, nil
}
