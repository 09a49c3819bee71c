package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
	"go.uber.org/goleak"
	socks5 "golang.org/x/net/proxy"
)

// The test binary doubles as ztunnel: with ZTUNNEL_TEST_MAIN set it runs main, so these
// tests exercise the real command with a real environment, signals and exit codes.
func TestMain(m *testing.M) {
	if os.Getenv("ZTUNNEL_TEST_MAIN") == "1" {
		os.Unsetenv("ZTUNNEL_TEST_MAIN")
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m)
}

// ztunnel starts the command in an empty directory with only env set: README command 1
// when env is empty.
func ztunnel(t *testing.T, env []string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append([]string{"ZTUNNEL_TEST_MAIN=1"}, env...)
	cmd.Dir = t.TempDir()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out
}

func exitCode(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	err := cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

// waitReady polls the readiness port a bounded number of times.
func waitReady(t *testing.T, out *bytes.Buffer) {
	t.Helper()
	for range 400 {
		resp, err := http.Get("http://127.0.0.1:15021/healthz/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("ztunnel never became ready; output:\n%s", out)
}

func body(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestStandaloneStartsServesAndExitsZeroOnSIGTERM(t *testing.T) {
	ztest.NoLeaks(t)
	cmd, out := ztunnel(t, nil)
	waitReady(t, out)
	var d struct{ Workloads, Services, Policies []any }
	if err := json.Unmarshal([]byte(body(t, "http://localhost:15000/config_dump")), &d); err != nil ||
		len(d.Workloads) != 5 || len(d.Services) != 1 || len(d.Policies) != 1 {
		t.Errorf("config_dump: %v %d/%d/%d", err, len(d.Workloads), len(d.Services), len(d.Policies))
	}
	if m := body(t, "http://localhost:15020/metrics"); !strings.Contains(m, "istio_build{") {
		t.Error("metrics lack istio_build")
	}
	// The built-in CA issues the example's HBONE identities (prefetched in the background).
	var certs []struct{ Identity, State string }
	for range 200 {
		var d struct {
			Certificates []struct{ Identity, State string }
		}
		json.Unmarshal([]byte(body(t, "http://localhost:15000/config_dump")), &d)
		if certs = d.Certificates; len(certs) == 3 && certs[0].State == "Available" && certs[1].State == "Available" && certs[2].State == "Available" {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	if len(certs) != 3 || certs[0].Identity != "spiffe://cluster.local/ns/default/sa/curl" || certs[1].Identity != "spiffe://cluster.local/ns/default/sa/httpbin" ||
		certs[2].Identity != "spiffe://cluster.local/ns/foo/sa/sleep" || certs[2].State != "Available" {
		t.Errorf("certificates = %+v, want curl, httpbin and sleep Available", certs)
	}
	carriesTraffic(t)
	explainsAuthz(t)
	answersDNS(t)
	http.DefaultClient.CloseIdleConnections()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, cmd); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0; output:\n%s", code, out)
	}
	for _, want := range []string{"STANDALONE MODE", "static config loaded workloads=5", "FAKE_CA=true: the built-in CA", "received signal, starting drain", "ztunnel stopped"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

func TestBadVariableFailsStartNamingIt(t *testing.T) {
	ztest.NoLeaks(t)
	cmd, out := ztunnel(t, []string{"PACKET_MARK=lots", "SECRET_TTL=forever"})
	if code := exitCode(t, cmd); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	for _, want := range []string{`PACKET_MARK="lots"`, `SECRET_TTL="forever"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
}

func TestPortInUseExitsNonZeroNamingTheAddress(t *testing.T) {
	ztest.NoLeaks(t)
	l, err := net.Listen("tcp", "127.0.0.1:15000")
	if err != nil {
		t.Fatalf("port 15000 must be free for this test (is another ztunnel running?): %v", err)
	}
	defer l.Close()
	cmd, out := ztunnel(t, []string{"IPV6_ENABLED=false"})
	if code := exitCode(t, cmd); code == 0 {
		t.Error("exit code 0 with the admin port taken")
	}
	if !strings.Contains(out.String(), "127.0.0.1:15000") {
		t.Errorf("error does not name the address:\n%s", out)
	}
}

func TestVersion(t *testing.T) {
	ztest.NoLeaks(t)
	cmd, out := ztunnel(t, nil, "version")
	if code := exitCode(t, cmd); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"version: ", "git revision: ", "go version: go1."} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("version output lacks %q:\n%s", want, out)
		}
	}
	cmd, _ = ztunnel(t, nil, "frobnicate")
	if code := exitCode(t, cmd); code != 2 {
		t.Errorf("unknown command exit %d, want 2", code)
	}
}

// carriesTraffic is README command 1's example: an HTTP request from default/curl
// (127.0.0.6) through the SOCKS5 listener to the httpbin service, whose two pods' apps
// this test runs on 127.0.0.3:8080 and 127.0.0.4:8080.
func carriesTraffic(t *testing.T) {
	t.Helper()
	seen := make(chan string, 4)
	for _, ip := range []string{"127.0.0.3", "127.0.0.4"} {
		l, err := net.Listen("tcp", ip+":8080")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen <- r.RemoteAddr
			io.WriteString(w, "hello from httpbin")
		})}
		go srv.Serve(l)
		defer srv.Close()
	}
	socks, err := socks5.SOCKS5("tcp", "127.0.0.1:15080", nil, &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 6)}})
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: socks.(socks5.ContextDialer).DialContext}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://httpbin.default.svc.cluster.local:8000/")
	if err != nil {
		t.Fatalf("request through ztunnel: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "hello from httpbin" {
		t.Errorf("got %d %q", resp.StatusCode, b)
	}
	if from := <-seen; !strings.HasPrefix(from, "127.0.0.6:") {
		t.Errorf("the app saw the request from %s, want the client's own address 127.0.0.6", from)
	}
}

// explainsAuthz asks the running ztunnel, through `ztunnel authz check`, about the seed's
// policy (DENY from namespace foo): foo/sleep is denied, default/curl allowed.
func explainsAuthz(t *testing.T) {
	t.Helper()
	for _, tt := range []struct {
		id, want string
		code     int
	}{
		{"spiffe://cluster.local/ns/foo/sa/sleep", "explicitly denied by default/httpbin (rule 0, clause 0, match 0)", 3},
		{"spiffe://cluster.local/ns/default/sa/curl", "no allow policies exist", 0},
	} {
		cmd, out := ztunnel(t, nil, "authz", "check", "--src", "127.0.0.2", "--src-id", tt.id, "--dst", "127.0.0.3:8080")
		if code := exitCode(t, cmd); code != tt.code || !strings.Contains(out.String(), tt.want) ||
			!strings.Contains(out.String(), "default/httpbin") {
			t.Errorf("authz check for %s: exit %d, want %d; output:\n%s", tt.id, code, tt.code, out)
		}
	}
	// And the policy is enforced: foo/sleep (127.0.0.2) cannot reach httpbin.
	socks, _ := socks5.SOCKS5("tcp", "127.0.0.1:15080", nil, &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}})
	if c, err := socks.Dial("tcp", "httpbin.default.svc.cluster.local:8000"); err == nil {
		c.Close()
		t.Error("foo/sleep reached httpbin despite the seed's DENY policy")
	}
}

// answersDNS queries the standalone DNS proxy (127.0.0.1:15053) as foo/sleep would, then
// asks `ztunnel dns check` why; names only upstream would know are explained, never sent.
func answersDNS(t *testing.T) {
	t.Helper()
	m := new(mdns.Msg)
	m.SetQuestion("httpbin.default.", mdns.TypeA)
	c := &mdns.Client{Timeout: 5 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)}}}
	r, _, err := c.Exchange(m, "127.0.0.1:15053")
	if err != nil || len(r.Answer) != 1 || r.Answer[0].(*mdns.A).A.String() != "127.0.10.1" {
		t.Errorf("DNS from foo/sleep for httpbin.default: %v, %v", r, err)
	}
	for _, tt := range []struct {
		args []string
		want []string
		code int
	}{
		{[]string{"--src", "127.0.0.2", "httpbin.default"}, []string{"MESH  A httpbin.default. from 127.0.0.2 (foo/sleep)",
			"matched service default/httpbin.default.svc.cluster.local", "records: 127.0.10.1",
			"names tried: httpbin.default, *.default, httpbin.default.svc.cluster.local"}, 0},
		{[]string{"httpbin", "--src", "127.0.0.2"}, []string{"FORWARD  A httpbin. from 127.0.0.2 (foo/sleep)",
			"names tried: httpbin, httpbin.foo.svc.cluster.local,"}, 3},
		{[]string{"--src", "127.0.0.99", "httpbin.default"}, []string{"SERVFAIL", "no workload has this source address"}, 2},
	} {
		cmd, out := ztunnel(t, nil, append([]string{"dns", "check"}, tt.args...)...)
		code := exitCode(t, cmd)
		for _, w := range tt.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("dns check %v lacks %q:\n%s", tt.args, w, out)
			}
		}
		if code != tt.code {
			t.Errorf("dns check %v: exit %d, want %d", tt.args, code, tt.code)
		}
	}
}
