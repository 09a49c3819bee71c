// Command mtlspipe is the benchmark's baseline: the least a mutual-TLS tunnel can do.
// Each accepted TCP connection gets its own TLS 1.3 connection to the far end (no
// multiplexing, no HTTP/2, no policy, no telemetry), and bytes are copied both ways with
// half-close kept. Whatever ztunnel costs above this is the price of HBONE and of its
// features.
//
//	mtlspipe -cert c.pem -key k.pem -ca ca.pem -mode client -route 10.0.0.1:7000=10.0.0.2:7001
//	mtlspipe -cert c.pem -key k.pem -ca ca.pem -mode server -route 10.0.0.2:7001=10.0.0.3:5201
package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"strings"
	"sync"
)

type routes []string

func (r *routes) String() string     { return strings.Join(*r, ",") }
func (r *routes) Set(s string) error { *r = append(*r, s); return nil }

func main() {
	var rs routes
	cert := flag.String("cert", "", "PEM certificate chain")
	key := flag.String("key", "", "PEM private key")
	caFile := flag.String("ca", "", "PEM roots the peer must chain to")
	mode := flag.String("mode", "client", "client: accept TCP, dial TLS; server: accept TLS, dial TCP")
	flag.Var(&rs, "route", "listen=connect (repeatable)")
	flag.Parse()
	cfg, err := tlsConfig(*cert, *key, *caFile, *mode == "server")
	if err != nil {
		log.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, r := range rs {
		listen, connect, ok := strings.Cut(r, "=")
		if !ok {
			log.Fatalf("route %q: want listen=connect", r)
		}
		l, err := net.Listen("tcp", listen)
		if err != nil {
			log.Fatal(err)
		}
		wg.Go(func() { serve(l, connect, cfg, *mode == "server") })
	}
	fmt.Println("ready")
	wg.Wait()
}

func tlsConfig(certFile, keyFile, caFile string, server bool) (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading the key pair: %w", err)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("reading the roots: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{pair},
		SessionTicketsDisabled: true, NextProtos: []string{"pipe"}}
	if server {
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, roots
	} else {
		// The peer is named by a SPIFFE URI, not a host name, as in the mesh.
		cfg.RootCAs, cfg.InsecureSkipVerify = roots, true
		cfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			c, err := x509.ParseCertificate(raw[0])
			if err != nil {
				return err
			}
			inter := x509.NewCertPool()
			for _, r := range raw[1:] {
				if ic, err := x509.ParseCertificate(r); err == nil {
					inter.AddCert(ic)
				}
			}
			_, err = c.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
			return err
		}
	}
	return cfg, nil
}

func serve(l net.Listener, connect string, cfg *tls.Config, server bool) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			var up net.Conn
			if server {
				c = tls.Server(c, cfg)
				up, err = net.Dial("tcp", connect)
			} else {
				up, err = tls.Dial("tcp", connect, cfg)
			}
			if err != nil {
				return
			}
			defer up.Close()
			var wg sync.WaitGroup
			wg.Go(func() { io.Copy(up, c); closeWrite(up) })
			io.Copy(c, up)
			closeWrite(c)
			wg.Wait()
		}()
	}
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}
