package mtls_test

import (
	"context"
	"crypto/fips140"
	"crypto/tls"
	"net"
	"os"
	"os/exec"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/ca"
	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/mtls"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// negotiate handshakes ztunnel's server under srvPol (its config then edited by
// srvEdit, when set, to play a peer that is not ztunnel) with a ztunnel client under
// cliPol edited by cliEdit, and returns what each side concluded.
func negotiate(t *testing.T, srvPol, cliPol *mtls.Policy, srvEdit, cliEdit func(*tls.Config)) (cs tls.ConnectionState, cliErr, srvErr error) {
	t.Helper()
	c, _ := ca.New("cluster.local", time.Hour, nil)
	client, server := issue(t, c, sleepID), issue(t, c, httpbinID)
	srvCfg := mtls.ServerConfig(srvPol, func(context.Context, net.Addr) (*identity.Cert, error) { return server, nil })
	if srvEdit != nil {
		inner := srvCfg.GetConfigForClient
		srvCfg.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			cfg, err := inner(h)
			if cfg != nil {
				srvEdit(cfg)
			}
			return cfg, err
		}
	}
	cliCfg := mtls.ClientConfig(cliPol, client, []identity.Identity{httpbinID})
	if cliEdit != nil {
		cliEdit(cliCfg)
	}
	a, b := net.Pipe()
	var wg sync.WaitGroup
	wg.Go(func() {
		defer b.Close()
		srvErr = mtls.Handshake(context.Background(), tls.Server(b, srvCfg), 5*time.Second)
	})
	tc := tls.Client(a, cliCfg)
	cliErr = mtls.Handshake(context.Background(), tc, 5*time.Second)
	cs = tc.ConnectionState()
	a.Close()
	wg.Wait()
	return cs, cliErr, srvErr
}

var tls12Only = func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 }

// TLS12_ENABLED and COMPLIANCE_POLICY=pqc as Rust's providers (src/tls/lib.rs
// provider(), tls_versions()) apply them: each side refuses what the policy does not allow.
func TestTLSPolicy(t *testing.T) {
	ztest.NoLeaks(t)
	tls12 := &mtls.Policy{TLS12: true}
	pqc := &mtls.Policy{PQC: true}
	x25519Only := func(c *tls.Config) { c.CurvePreferences = []tls.CurveID{tls.X25519} }
	tests := []struct {
		name             string
		srv, cli         *mtls.Policy
		srvEdit, cliEdit func(*tls.Config)
		ok               bool
		version          uint16
		curve            tls.CurveID
	}{
		{name: "default is TLS 1.3", ok: true, version: tls.VersionTLS13},
		{name: "TLS 1.2 client refused by default", cli: tls12, cliEdit: tls12Only},
		{name: "TLS 1.2 server refused by default", srv: tls12, srvEdit: tls12Only},
		{name: "TLS 1.2 with TLS12_ENABLED", srv: tls12, cli: tls12, cliEdit: tls12Only, ok: true, version: tls.VersionTLS12},
		{name: "TLS12_ENABLED still prefers 1.3", srv: tls12, cli: tls12, ok: true, version: tls.VersionTLS13},
		{name: "TLS 1.2 CBC suite refused", srv: tls12, cli: tls12, cliEdit: func(c *tls.Config) {
			tls12Only(c)
			c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}
		}},
		{name: "pqc server, ML-KEM client", srv: pqc, ok: true, version: tls.VersionTLS13, curve: tls.X25519MLKEM768},
		{name: "pqc server refuses an X25519-only client", srv: pqc, cliEdit: x25519Only},
		{name: "pqc client refuses an X25519-only server", cli: pqc, srvEdit: x25519Only},
		{name: "pqc both ways", srv: pqc, cli: pqc, ok: true, version: tls.VersionTLS13, curve: tls.X25519MLKEM768},
		{name: "pqc overrides TLS12_ENABLED", srv: &mtls.Policy{PQC: true, TLS12: true}, cli: tls12, cliEdit: tls12Only},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs, cliErr, srvErr := negotiate(t, tt.srv, tt.cli, tt.srvEdit, tt.cliEdit)
			if tt.ok != (cliErr == nil && srvErr == nil) {
				t.Fatalf("client %v, server %v; want success %v", cliErr, srvErr, tt.ok)
			}
			if !tt.ok {
				return
			}
			if cs.Version != tt.version {
				t.Errorf("version %s, want %s", tls.VersionName(cs.Version), tls.VersionName(tt.version))
			}
			if tt.curve != 0 && cs.CurveID != tt.curve {
				t.Errorf("key exchange %s, want %s", cs.CurveID, tt.curve)
			}
		})
	}
}

// approved are the algorithms FIPS 140-3 approves that crypto/tls may negotiate.
var (
	approvedGroups = []tls.CurveID{tls.CurveP256, tls.CurveP384, tls.CurveP521, tls.X25519MLKEM768,
		tls.SecP256r1MLKEM768, tls.SecP384r1MLKEM1024}
	approvedSuites = []uint16{tls.TLS_AES_128_GCM_SHA256, tls.TLS_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}
)

// The FIPS build (GODEBUG=fips140=on, or an image built with GOFIPS140): whatever the
// peer offers, only approved algorithms are negotiated; a peer that offers only
// others is refused. Run in a child process, since FIPS mode is fixed at start-up.
func TestFIPSModeNegotiatesOnlyApproved(t *testing.T) {
	ztest.NoLeaks(t)
	if !fips140.Enabled() {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFIPSModeNegotiatesOnlyApproved$", "-test.count=1")
		cmd.Env = append(os.Environ(), "GODEBUG=fips140=on")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("in FIPS mode: %v\n%s", err, out)
		}
		return
	}
	if mtls.Provider() != "go-fips140" {
		t.Errorf("provider %q in FIPS mode", mtls.Provider())
	}
	tls12 := &mtls.Policy{TLS12: true}
	for _, edit := range []func(*tls.Config){nil, tls12Only,
		func(c *tls.Config) { c.CurvePreferences = []tls.CurveID{tls.X25519, tls.CurveP256} }} {
		cs, cliErr, srvErr := negotiate(t, tls12, tls12, nil, edit)
		if cliErr != nil || srvErr != nil {
			t.Fatalf("FIPS handshake: client %v, server %v", cliErr, srvErr)
		}
		if !slices.Contains(approvedGroups, cs.CurveID) || !slices.Contains(approvedSuites, cs.CipherSuite) {
			t.Errorf("negotiated %s with %s in FIPS mode", tls.CipherSuiteName(cs.CipherSuite), cs.CurveID)
		}
	}
	_, cliErr, srvErr := negotiate(t, nil, nil, nil, func(c *tls.Config) { c.CurvePreferences = []tls.CurveID{tls.X25519} })
	if cliErr == nil && srvErr == nil {
		t.Error("an X25519-only peer was accepted in FIPS mode")
	}
}
