//go:build linux

package ztest

import (
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"testing"
	"time"

	discoverypb "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	pb "istio.io/api/security/v1alpha1"

	"github.com/ztunnel-go/ztunnel/internal/ca"
)

// IstiodName is istiod's in-cluster name, the one the ztunnel chart gives as
// XDS_ADDRESS and CA_ADDRESS.
const IstiodName = "istiod.istio-system.svc"

// FakeIstiod is istiod as a pod reaches it: xDS and the CA on one TLS port, with a
// serving certificate for istiod.istio-system.svc signed by the mesh root, which is
// what the istio-ca-root-cert ConfigMap (the chart's root-cert.pem) holds. The
// resources and certificates are those of the FakeXDS and FakeCA it fronts.
type FakeIstiod struct {
	XDS     *FakeXDS
	CA      *FakeCA
	RootPEM string // the mesh root, for root-cert.pem
	srv     *grpc.Server
}

// NewFakeIstiod serves xds and ca on one gRPC server; ServeIn gives it an address. It
// stops with the test.
func NewFakeIstiod(t testing.TB, xds *FakeXDS, fca *FakeCA) *FakeIstiod {
	t.Helper()
	cert, err := meshServingCert(fca.CA, IstiodName)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(istiodKeepalive, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}})))
	discoverypb.RegisterAggregatedDiscoveryServiceServer(srv, &adsService{f: xds})
	pb.RegisterIstioCertificateServiceServer(srv, &caService{f: fca})
	t.Cleanup(srv.Stop)
	return &FakeIstiod{XDS: xds, CA: fca, RootPEM: fca.CA.RootPEM(), srv: srv}
}

// ServeIn listens on addr (host:port, an address of that namespace) inside the network
// namespace at nsPath, as istiod's Service would be reached from the bed's pods.
func (f *FakeIstiod) ServeIn(t testing.TB, nsPath, addr string) {
	t.Helper()
	l, err := listenIn(nsPath, addr)
	if err != nil {
		t.Fatal(err)
	}
	go f.srv.Serve(l) // ends with the server's Stop
}

// meshServingCert is a server certificate for name, signed by the mesh CA as istiod's
// own certificate is.
func meshServingCert(mesh *ca.CA, name string) (tls.Certificate, error) {
	key, err := ca.NewKey()
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := mesh.Issue(&x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, key.Public())
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}, nil
}
