package ztest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	pb "istio.io/api/security/v1alpha1"

	"github.com/ztunnel-go/ztunnel/internal/ca"
	"github.com/ztunnel-go/ztunnel/internal/identity"
)

// FakeCA is an Istio CA (istiod's CreateCertificate) on loopback with real TLS, signing
// with a real CA, and able to misbehave on demand.
type FakeCA struct {
	CA       *ca.CA // signs the answers; its root is what workloads must trust
	Address  string // https://localhost:<port>, for caclient
	ServePEM string // root of the server's own TLS certificate, for CA_ROOT_CA

	addr string       // host:port, kept across Stop/Start
	cert *servingCert // RotateServing replaces it

	mu       sync.Mutex // guards the fields below
	srv      *grpc.Server
	reqs     []CARequest
	failWith error
	delay    time.Duration
	answerAs identity.Identity
	garbage  bool
}

// CARequest is what one CreateCertificate call carried.
type CARequest struct {
	CSR          *x509.CertificateRequest
	TTLSeconds   int64
	Impersonated string      // metadata ImpersonatedIdentity
	MD           metadata.MD // gRPC metadata: authorization, clusterid, CA_HEADER_*
}

// NewFakeCA starts a fake CA; it stops when the test ends.
func NewFakeCA(t testing.TB) *FakeCA {
	t.Helper()
	signer, err := ca.New("cluster.local", 24*time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	serving, servePEM, err := newServing()
	if err != nil {
		t.Fatal(err)
	}
	f := &FakeCA{CA: signer, ServePEM: servePEM, cert: newServingCert(serving)}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = l.Addr().String()
	_, port, _ := net.SplitHostPort(f.addr)
	f.Address = "https://localhost:" + port
	f.serve(l)
	t.Cleanup(f.Stop)
	return f
}

// istiodKeepalive is istiod's gRPC keepalive enforcement (pilot/pkg/grpc): pings at
// most every 15 s, and none on a channel with no open RPC.
var istiodKeepalive = grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 15 * time.Second})

// newServing is a localhost TLS certificate signed by its own throwaway root.
func newServing() (tls.Certificate, string, error) {
	root, err := ca.New("fake-istiod", time.Hour, nil)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	key, err := ca.NewKey()
	if err != nil {
		return tls.Certificate{}, "", err
	}
	leaf, err := root.Issue(&x509.Certificate{
		SerialNumber: big.NewInt(1), DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, key.Public())
	if err != nil {
		return tls.Certificate{}, "", err
	}
	return tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}, root.RootPEM(), nil
}

func (f *FakeCA) serve(l net.Listener) {
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(f.cert.config())), istiodKeepalive)
	pb.RegisterIstioCertificateServiceServer(srv, &caService{f: f})
	f.mu.Lock()
	f.srv = srv
	f.mu.Unlock()
	go srv.Serve(l) // ends when Stop closes the listener
}

// Stop takes the CA down (an outage); Start brings it back on the same address.
func (f *FakeCA) Stop() {
	f.mu.Lock()
	srv := f.srv
	f.srv = nil
	f.mu.Unlock()
	if srv != nil {
		srv.Stop()
	}
}

// Start restarts a stopped CA on its old address.
func (f *FakeCA) Start(t testing.TB) {
	t.Helper()
	l, err := net.Listen("tcp", f.addr)
	if err != nil {
		t.Fatalf("restarting fake CA on %s: %v", f.addr, err)
	}
	f.serve(l)
}

// ListenIn serves the CA inside another network namespace too (a node's, where a
// ztunnel runs as its own process) and returns its address there. It lasts until Stop;
// Start does not bring it back.
func (f *FakeCA) ListenIn(t testing.TB, nsPath string) string {
	t.Helper()
	l, err := listenIn(nsPath, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	srv := f.srv
	f.mu.Unlock()
	go srv.Serve(l) // ends with Stop, as the main listener does
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return "https://localhost:" + port
}

// Fail makes every call fail with err (nil: succeed again).
func (f *FakeCA) Fail(err error) { f.mu.Lock(); f.failWith = err; f.mu.Unlock() }

// Delay holds every answer for d (or until the caller gives up).
func (f *FakeCA) Delay(d time.Duration) { f.mu.Lock(); f.delay = d; f.mu.Unlock() }

// AnswerAs signs every CSR for id instead of the identity it asks for.
func (f *FakeCA) AnswerAs(id identity.Identity) { f.mu.Lock(); f.answerAs = id; f.mu.Unlock() }

// Garbage makes the CA answer with chains that are not certificates.
func (f *FakeCA) Garbage(on bool) { f.mu.Lock(); f.garbage = on; f.mu.Unlock() }

// Requests returns what the CA was sent, in order.
func (f *FakeCA) Requests() []CARequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]CARequest(nil), f.reqs...)
}

type caService struct {
	pb.UnimplementedIstioCertificateServiceServer
	f *FakeCA
}

func (s *caService) CreateCertificate(ctx context.Context, req *pb.IstioCertificateRequest) (*pb.IstioCertificateResponse, error) {
	f := s.f
	md, _ := metadata.FromIncomingContext(ctx)
	rec := CARequest{TTLSeconds: req.ValidityDuration, MD: md,
		Impersonated: req.GetMetadata().GetFields()["ImpersonatedIdentity"].GetStringValue()}
	if block, _ := pem.Decode([]byte(req.Csr)); block != nil {
		rec.CSR, _ = x509.ParseCertificateRequest(block.Bytes)
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, rec)
	failWith, delay, answerAs, garbage := f.failWith, f.delay, f.answerAs, f.garbage
	f.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	switch {
	case failWith != nil:
		return nil, status.Error(codes.Unavailable, failWith.Error())
	case garbage:
		return &pb.IstioCertificateResponse{CertChain: []string{"not a certificate", "nor this"}}, nil
	case rec.CSR == nil:
		return nil, status.Error(codes.InvalidArgument, "CSR is not PEM")
	case !answerAs.IsZero():
		return s.signAs(rec.CSR, answerAs)
	}
	chain, err := f.CA.SignCSR([]byte(req.Csr), time.Duration(req.ValidityDuration)*time.Second)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return &pb.IstioCertificateResponse{CertChain: chain}, nil
}

func (s *caService) signAs(csr *x509.CertificateRequest, id identity.Identity) (*pb.IstioCertificateResponse, error) {
	leaf, err := s.f.CA.Issue(ca.LeafTemplate(id, time.Now(), time.Hour), csr.PublicKey)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &pb.IstioCertificateResponse{CertChain: []string{string(identity.EncodePEM(leaf)), s.f.CA.RootPEM()}}, nil
}

// ErrCAOutage is a convenient failure for Fail.
var ErrCAOutage = errors.New("fake CA is down")
