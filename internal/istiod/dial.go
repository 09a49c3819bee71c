package istiod

import (
	"crypto/tls"
	"fmt"
	"net/url"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
)

// Keepalive is Rust ztunnel's control-plane HTTP/2 keepalive: a PING after 30 s of
// silence, answered within 10 s, or the connection is dropped and redialled. Only while
// an RPC is open: istiod's enforcement policy (MinTime 15 s, pings without streams not
// permitted) answers pings on an idle channel, such as the CA's between CSRs, with
// GOAWAY too_many_pings.
var Keepalive = keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}

// Dial prepares a gRPC connection to istiod at address: https:// verified with roots
// at each handshake (the roots in force then; alt is a name istiod's certificate may
// carry instead of the address's host), or http:// in plaintext (local testing). It does
// not connect until first used; it fails when no roots can be read at all.
func Dial(address string, roots *Roots, alt string, creds *CallCreds, extra ...grpc.DialOption) (*grpc.ClientConn, error) {
	u, err := url.Parse(address)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("istiod address %q: want https://host:port or http://host:port", address)
	}
	var transport grpc.DialOption
	if u.Scheme == "https" {
		if roots == nil {
			return nil, fmt.Errorf("istiod address %q: no trusted roots given", address)
		}
		if _, _, err := roots.Current(); err != nil {
			return nil, err
		}
		transport = grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
			MinVersion: tls.VersionTLS12, ServerName: u.Hostname(),
			InsecureSkipVerify: true, // Go would check with fixed roots; VerifyConnection checks with the current ones
			VerifyConnection:   roots.verifier(u.Hostname(), alt)}))
	} else {
		transport = grpc.WithTransportCredentials(insecure.NewCredentials())
		c := *creds
		c.Insecure = true
		creds = &c
	}
	opts := append([]grpc.DialOption{transport, grpc.WithPerRPCCredentials(creds), grpc.WithKeepaliveParams(Keepalive)}, extra...)
	conn, err := grpc.NewClient(u.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", address, err)
	}
	return conn, nil
}
