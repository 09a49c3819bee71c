// Package caclient asks the Istio CA (istiod) for workload certificates:
// istio.v1.auth.IstioCertificateService/CreateCertificate over TLS, one call per
// certificate.
package caclient

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/structpb"
	pb "istio.io/api/security/v1alpha1"

	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/istiod"
)

// Config says where the CA is and how to authenticate to it.
type Config struct {
	Address string        // https://host:port
	Roots   *istiod.Roots // trusted roots for the CA's serving certificate, re-read when they change
	// AltHostname is a name the CA's certificate may carry instead of Address's host.
	AltHostname string
	Token       func() (string, error)
	ClusterID   string
	Headers     []istiod.Header // CA_HEADER_* metadata
	TTL         time.Duration   // requested validity (SECRET_TTL)
	// Impersonate is shared mode: ztunnel asks for other workloads' identities, which
	// istiod allows only for pods on ztunnel's node.
	Impersonate bool
	Now         func() time.Time // nil: time.Now
}

// Client is safe for concurrent use. New does not connect; the first Fetch does.
type Client struct {
	cfg Config

	mu     sync.Mutex // guards the fields below
	conn   *grpc.ClientConn
	svc    pb.IstioCertificateServiceClient
	gen    uint64 // the roots' generation conn was dialed under
	closed bool
}

// New builds a client; it fails on a malformed address or unreadable roots.
func New(cfg Config) (*Client, error) {
	if u, err := url.Parse(cfg.Address); err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("CA address %q: want https://host:port", cfg.Address)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Client{cfg: cfg}
	if err := c.dialLocked(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Client) dialLocked() error {
	_, gen, _ := c.cfg.Roots.Current()
	conn, err := istiod.Dial(c.cfg.Address, c.cfg.Roots, c.cfg.AltHostname,
		&istiod.CallCreds{Token: c.cfg.Token, ClusterID: c.cfg.ClusterID, Headers: c.cfg.Headers})
	if err != nil {
		return fmt.Errorf("CA roots: %w", err)
	}
	c.conn, c.svc, c.gen = conn, pb.NewIstioCertificateServiceClient(conn), gen
	return nil
}

// service is the CA's client under the roots in force: when they changed since the
// connection was dialed, a new one is dialed under them (Rust: CaClient's
// rebuild_channel). A CSR in flight on the old one fails and the certificate manager
// retries it, as after any CA error.
func (c *Client) service() (pb.IstioCertificateServiceClient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("CA client closed")
	}
	_, gen, _ := c.cfg.Roots.Current() // a bad file keeps the roots, and the connection, in force
	if gen != c.gen {
		old := c.conn
		if err := c.dialLocked(); err != nil {
			return nil, err
		}
		old.Close()
	}
	return c.svc, nil
}

// Close releases the connection; later calls do nothing.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if err := c.conn.Close(); err != nil && !errors.Is(err, grpc.ErrClientConnClosing) {
		return err
	}
	return nil
}

// Fetch creates a key and a CSR for id and returns the signed certificate. A leaf for
// another identity than id is refused (identity.ErrWrongIdentity).
func (c *Client) Fetch(ctx context.Context, id identity.Identity) (*identity.Cert, error) {
	key, csr, err := NewCSR(id)
	if err != nil {
		return nil, err
	}
	req := &pb.IstioCertificateRequest{Csr: string(csr), ValidityDuration: int64(c.cfg.TTL / time.Second)}
	if c.cfg.Impersonate {
		req.Metadata, err = structpb.NewStruct(map[string]any{"ImpersonatedIdentity": id.String()})
		if err != nil {
			return nil, fmt.Errorf("building request metadata: %w", err)
		}
	}
	svc, err := c.service()
	if err != nil {
		return nil, err
	}
	resp, err := svc.CreateCertificate(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("requesting certificate for %s from %s: %w", id, c.cfg.Address, err)
	}
	cert, err := identity.NewCert(id, key, resp.GetCertChain(), c.cfg.Now())
	if err != nil {
		return nil, fmt.Errorf("CA answer for %s: %w", id, err)
	}
	return cert, nil
}

// NewCSR makes an ECDSA P-256 key and a CSR whose only name is id as a URI SAN (no
// subject), as Rust ztunnel sends.
func NewCSR(id identity.Identity) (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating key: %w", err)
	}
	u, err := url.Parse(id.String())
	if err != nil {
		return nil, nil, fmt.Errorf("identity URI: %w", err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		SignatureAlgorithm: x509.ECDSAWithSHA256,
		URIs:               []*url.URL{u},
	}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("creating CSR: %w", err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}
