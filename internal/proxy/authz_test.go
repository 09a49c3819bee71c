package proxy_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/emptypb"
	"istio.io/istio/pkg/workloadapi"
	"istio.io/istio/pkg/workloadapi/security"

	"github.com/ztunnel-go/ztunnel/internal/hbone"
	"github.com/ztunnel-go/ztunnel/internal/state"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// apply adds policies (and workloads) to node B's store, as istiod would push them.
func (n *node) apply(t *testing.T, items ...any) {
	t.Helper()
	var u state.Update
	for _, it := range items {
		switch v := it.(type) {
		case *security.Authorization:
			u.Policies = append(u.Policies, v)
		case *workloadapi.Workload:
			u.Addresses = append(u.Addresses, ztest.AsAddress(v))
		}
	}
	if errs := n.store.Apply(u); len(errs) > 0 {
		t.Fatal(errs)
	}
}

// echo1 is node B's echo-1 workload as the mesh config declares it.
func echo1() *workloadapi.Workload {
	w := ztest.WithService(ztest.Workload("default", "echo-1", "127.0.11.1"), "default/echo.default.svc.cluster.local", 80, 8080)
	w.Uid, w.ServiceAccount, w.Node = "b//echo-1", "echo", "b"
	return w
}

// alive reports whether an open tunnel still carries bytes both ways.
func alive(c net.Conn) bool {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte("?")); err != nil {
		return false
	}
	_, err := io.ReadFull(c, make([]byte, 1))
	return err == nil
}

func TestSeedScenario(t *testing.T) {
	ztest.NoLeaks(t)
	b := newBed(t)
	b.b.apply(t, ztest.DenyFromNamespace("default", "httpbin", "foo"))

	foo, code := b.socks(t, sleepIP, "127.0.11.1:9000")
	foo.Close()
	if code == 0 {
		t.Error("foo/sleep reached the app through a DENY policy")
	}
	want := "RBAC rejected conn=127.0.10.2(spiffe://cluster.local/ns/foo/sa/sleep)->127.0.11.1:9000 reason=\"explicitly denied by default/httpbin\""
	if !b.b.logs.WaitFor(want) {
		t.Errorf("node B log lacks %q:\n%s", want, b.b.logs)
	}
	ok, code := b.socks(t, barIP, "127.0.11.1:9000")
	defer ok.Close()
	if code != 0 || !alive(ok) {
		t.Errorf("bar/client was refused (SOCKS5 %d)", code)
	}
	// The CONNECT itself got 401.
	good, _ := b.ca.Fetch(context.Background(), sleepID)
	var se *hbone.StatusError
	if err := b.hboneClient(t, good, "127.0.11.1", "127.0.11.1:9000"); !errors.As(err, &se) || se.Code != 401 {
		t.Errorf("CONNECT from foo = %v, want HTTP 401", err)
	}
}

func TestOpenConnectionClosedWhenDenyArrives(t *testing.T) {
	ztest.NoLeaks(t)
	for _, tt := range []struct {
		name   string
		before []any   // applied before the connection opens
		after  [][]any // applied while it is open, one update each
	}{
		{"namespace policy", nil, [][]any{{ztest.DenyFromNamespace("default", "late", "foo")}}},
		{"selector policy attached by a workload update", []any{selectorDeny("default", "sel", "foo")},
			[][]any{{withPolicies(echo1(), "default/sel")}}},
		// The other arrival order (catalogue AZ-7 c): the workload names the policy first;
		// open connections wait for it, and the end is the same.
		{"workload update before its selector policy", nil,
			[][]any{{withPolicies(echo1(), "default/sel")}, {selectorDeny("default", "sel", "foo")}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := newBed(t)
			b.b.apply(t, tt.before...)
			c, code := b.socks(t, sleepIP, "127.0.11.1:9000")
			defer c.Close()
			if code != 0 || !alive(c) {
				t.Fatalf("tunnel did not open (SOCKS5 %d)", code)
			}
			bystander, _ := b.socks(t, barIP, "127.0.11.1:9000")
			defer bystander.Close()
			for i, u := range tt.after {
				b.b.apply(t, u...)
				// Before the last update the named policy is missing: open connections
				// stay until it arrives (new ones would wait for it, then fail closed).
				if i < len(tt.after)-1 && (!alive(c) || !alive(bystander)) {
					t.Fatal("an open connection was closed for a policy that has not arrived yet")
				}
			}
			if !b.b.logs.WaitFor("connection closed due to policy change") {
				t.Fatalf("no late enforcement logged:\n%s", b.b.logs)
			}
			if alive(c) {
				t.Error("the denied connection still carries bytes")
			}
			if !alive(bystander) {
				t.Error("a still-allowed connection was closed too")
			}
		})
	}
}

func selectorDeny(ns, name, from string) *security.Authorization {
	p := ztest.DenyFromNamespace(ns, name, from)
	p.Scope = security.Scope_WORKLOAD_SELECTOR
	return p
}

func withPolicies(w *workloadapi.Workload, keys ...string) *workloadapi.Workload {
	w.AuthorizationPolicies = keys
	return w
}

// TestStrictRefusesPlaintext: PeerAuthentication STRICT, as istiod converts it (a global
// DENY of connections without identity), resets plaintext connections on 15006.
func TestStrictRefusesPlaintext(t *testing.T) {
	ztest.NoLeaks(t)
	b := newBed(t)
	plain := netip.AddrPortFrom(netip.MustParseAddr("127.0.11.1"), b.port+1).String()
	c, err := net.Dial("tcp", plain)
	if err != nil {
		t.Fatal(err)
	}
	if !alive(c) {
		t.Fatal("plaintext connection refused without any policy")
	}
	c.Close()
	strict := &security.Authorization{Name: "istio_converted_static_strict", Namespace: "istio-system",
		Scope: security.Scope_GLOBAL, Action: security.Action_DENY,
		Groups: []*security.Group{{Rules: []*security.Rules{{Matches: []*security.Match{{
			NotPrincipals: []*security.StringMatch{{MatchType: &security.StringMatch_Presence{Presence: &emptypb.Empty{}}}},
		}}}}}}}
	b.b.apply(t, strict)
	// The reset may come before Dial returns, or on the first read.
	if c, err = net.Dial("tcp", plain); err == nil {
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 1))
	}
	if !isReset(err) {
		t.Errorf("plaintext connection = %v, want connection reset", err)
	}
	if !b.b.logs.WaitFor("explicitly denied by istio-system/istio_converted_static_strict") {
		t.Errorf("no STRICT denial logged:\n%s", b.b.logs)
	}
	// mTLS traffic is unaffected.
	ok, code := b.socks(t, sleepIP, "127.0.11.1:9000")
	defer ok.Close()
	if code != 0 || !alive(ok) {
		t.Error("STRICT refused an mTLS connection")
	}
}

func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

// No policy: allowed. Then an ALLOW selecting the server for another principal: the
// CONNECT gets 401, the reason is logged as Rust logs it, and the app is never dialed
// (catalogue AZ-1).
func TestAllowPolicyTurnsDefaultToDeny(t *testing.T) {
	ztest.NoLeaks(t)
	b := newBed(t)
	c, code := b.socks(t, sleepIP, "127.0.11.1:9000")
	if code != 0 || !alive(c) {
		t.Fatalf("no policy: SOCKS5 %d", code)
	}
	c.Close()
	b.b.apply(t, &security.Authorization{Name: "only-bar", Namespace: "default", Scope: security.Scope_NAMESPACE,
		Action: security.Action_ALLOW, Groups: []*security.Group{{Rules: []*security.Rules{{Matches: []*security.Match{{
			Principals: []*security.StringMatch{{MatchType: &security.StringMatch_Exact{Exact: "cluster.local/ns/bar/sa/client"}}},
		}}}}}}})
	accepts := countAccepts.Load()
	if c, code := b.socks(t, sleepIP, "127.0.11.1:9006"); code == 0 {
		c.Close()
		t.Fatal("foo/sleep reached the app past an ALLOW for bar/client only")
	} else {
		c.Close()
	}
	if !b.b.logs.WaitFor("allow policies exist, but none allowed") {
		t.Errorf("node B does not log the reason:\n%s", b.b.logs)
	}
	if n := countAccepts.Load() - accepts; n != 0 {
		t.Errorf("the app was dialed %d times for a denied connection", n)
	}
	ok, code := b.socks(t, barIP, "127.0.11.1:9000")
	defer ok.Close()
	if code != 0 || !alive(ok) {
		t.Errorf("bar/client, the allowed principal, was refused (SOCKS5 %d)", code)
	}
}
