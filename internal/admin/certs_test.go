package admin_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"istio.io/istio/istioctl/pkg/writer/ztunnel/configdump"

	"github.com/ztunnel-go/ztunnel/internal/admin"
	"github.com/ztunnel-go/ztunnel/internal/ca"
	"github.com/ztunnel-go/ztunnel/internal/certmgr"
	"github.com/ztunnel-go/ztunnel/internal/conns"
	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/rbac"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

type fixedCerts []certmgr.Status

func (f fixedCerts) Dump() []certmgr.Status { return f }

func certFixture(t *testing.T) (*fixture, *identity.Cert) {
	t.Helper()
	c, err := ca.New("cluster.local", 24*time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	httpbin := identity.New("cluster.local", "default", "httpbin")
	cert, err := c.Fetch(context.Background(), httpbin)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	f.srv = admin.New(admin.Deps{Config: f.cfg, State: f.store, Levels: f.levels, Certs: fixedCerts{
		{ID: httpbin, State: "Available", Cert: cert},
		{ID: identity.New("cluster.local", "foo", "sleep"), State: "Unavailable: CA unreachable"},
	}})
	return f, cert
}

func TestCertificatesCurrentLayout(t *testing.T) {
	ztest.NoLeaks(t)
	f, cert := certFixture(t)
	_, body, _ := f.do("GET", "/config_dump")
	var d struct{ Certificates []admin.CertificateJSON }
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Certificates) != 2 {
		t.Fatalf("%d certificates", len(d.Certificates))
	}
	got := d.Certificates[0]
	if got.Identity != "spiffe://cluster.local/ns/default/sa/httpbin" || got.State != "Available" ||
		len(got.CertChain) != 1 || len(got.RootCerts) != 1 {
		t.Fatalf("certificate = %+v", got)
	}
	pemText, err := base64.StdEncoding.DecodeString(got.CertChain[0].PEM)
	if err != nil || !strings.HasPrefix(string(pemText), "-----BEGIN CERTIFICATE-----") {
		t.Errorf("pem is not base64 of PEM: %v", err)
	}
	leaf := got.CertChain[0]
	if leaf.SerialNumber != cert.Leaf.SerialNumber.String() ||
		leaf.ExpirationTime != cert.NotAfter().UTC().Format(time.RFC3339) || leaf.ValidFrom != cert.NotBefore().UTC().Format(time.RFC3339) {
		t.Errorf("leaf info = %+v", leaf)
	}
	if u := d.Certificates[1]; u.State != "Unavailable: CA unreachable" || len(u.CertChain) != 0 {
		t.Errorf("unavailable = %+v", u)
	}

	var out bytes.Buffer
	cw := &configdump.ConfigWriter{Stdout: &out}
	if err := cw.Prime([]byte(body)); err != nil {
		t.Fatal(err)
	}
	if err := cw.PrintSecretSummary(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Leaf", "Root", "Available", "true", "Unavailable"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("istioctl secret summary lacks %q:\n%s", want, out.String())
		}
	}
}

func TestCertificates118Layout(t *testing.T) {
	ztest.NoLeaks(t)
	f, cert := certFixture(t)
	_, body, _ := f.do("GET", "/config_dump?layout=1.18")
	var d struct {
		Certificates []struct {
			Identity, State string
			CACert          []map[string]string `json:"ca_cert"`
			CertChain       []map[string]string `json:"cert_chain"`
		}
	}
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatal(err)
	}
	got := d.Certificates[0]
	if got.State != "Available" || len(got.CACert) != 1 || len(got.CertChain) != 1 {
		t.Fatalf("1.18 certificate = %+v", got)
	}
	// As in the seed: ca_cert is the workload's own certificate, in plain PEM.
	leaf, err := identity.ParsePEM([]byte(got.CACert[0]["pem"]))
	if err != nil || !leaf[0].Equal(cert.Leaf) || got.CACert[0]["serial_number"] != cert.Leaf.SerialNumber.String() {
		t.Errorf("ca_cert is not the leaf: %v", err)
	}
	for _, k := range []string{"pem", "serial_number", "valid_from", "expiration_time"} {
		if got.CertChain[0][k] == "" {
			t.Errorf("cert_chain entry lacks %s", k)
		}
	}
}

func TestDebugAuthz(t *testing.T) {
	ztest.NoLeaks(t)
	f := newFixture(t)
	f.srv = admin.New(admin.Deps{Config: f.cfg, State: f.store, Levels: f.levels, Authz: rbac.NewEngine(f.store)})
	q := "/debug/authz?src=127.0.0.2&dst=127.0.0.3:8080&srcId=" + url.QueryEscape("spiffe://cluster.local/ns/foo/sa/sleep")
	code, body, _ := f.do("GET", q)
	var a admin.AuthzAnswer
	if err := json.Unmarshal([]byte(body), &a); err != nil || code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	if a.Decision != "deny" || a.Policy != "default/httpbin" || a.DstWorkload != "default/httpbin-v1" ||
		len(a.Considered) != 1 || !a.Considered[0].Matched || a.Considered[0].Via != "namespace" {
		t.Errorf("answer %+v", a)
	}
	_, body, _ = f.do("GET", "/debug/authz?src=127.0.0.6&dst=127.0.0.3:8080&srcId="+url.QueryEscape("spiffe://cluster.local/ns/default/sa/curl"))
	json.Unmarshal([]byte(body), &a)
	if a.Decision != "allow" || a.Considered[0].Matched {
		t.Errorf("answer %+v", a)
	}
	if code, _, _ := f.do("GET", "/debug/authz?src=nope"); code != 400 {
		t.Errorf("bad query = %d, want 400", code)
	}
}

func TestWorkloadStateForIstioctl(t *testing.T) {
	ztest.NoLeaks(t)
	f := newFixture(t)
	reg := conns.New()
	pod := identity.Workload{UID: "54ce2023-7c77", Name: "sleep-abc", Namespace: "foo", ServiceAccount: "sleep"}
	reg.SetPod(pod, true)
	reg.SetPod(identity.Workload{UID: "pending-1", Name: "late", Namespace: "foo"}, false)
	done := reg.Add(pod, &conns.Conn{Src: "10.0.0.1:40000", OriginalDst: "10.96.0.1:80", ActualDst: "10.0.0.2:15008", Protocol: "HBONE"})
	defer done()
	reg.Add(pod, &conns.Conn{Inbound: true, Src: "10.0.0.9:5000", ActualDst: "10.0.0.1:8080", Protocol: "TCP"})
	f.srv = admin.New(admin.Deps{Config: f.cfg, State: f.store, Levels: f.levels, Conns: reg})
	_, body, _ := f.do("GET", "/config_dump")
	var d struct {
		WorkloadState map[string]admin.WorkloadStateJSON `json:"workloadState"`
	}
	json.Unmarshal([]byte(body), &d)
	ws := d.WorkloadState["54ce2023-7c77"]
	if ws.State != "Up" || len(ws.Connections.Outbound) != 1 || *ws.Connections.Outbound[0].OriginalDst != "10.96.0.1:80" ||
		len(ws.Connections.Inbound) != 1 || ws.Connections.Inbound[0].OriginalDst != nil || d.WorkloadState["pending-1"].State != "Pending" {
		t.Errorf("workloadState = %+v", d.WorkloadState)
	}
	var out bytes.Buffer
	cw := &configdump.ConfigWriter{Stdout: &out}
	if err := cw.Prime([]byte(body)); err != nil {
		t.Fatal(err)
	}
	if err := cw.PrintConnectionsSummary(configdump.ConnectionsFilter{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"sleep-abc.foo", "Outbound", "10.0.0.2:15008", "HBONE", "Inbound", "10.0.0.9:5000"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("istioctl connections lacks %q:\n%s", want, out.String())
		}
	}
}
