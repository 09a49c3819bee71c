package proxy_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	"istio.io/istio/pkg/workloadapi"

	"github.com/ztunnel-go/ztunnel/internal/hbone"
	"github.com/ztunnel-go/ztunnel/internal/proxy"
	"github.com/ztunnel-go/ztunnel/internal/state"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// TestAppTunnel pins Rust serve_connect's application tunnel and write_proxy_protocol:
// a PROXY tunnel is dialed on loopback from loopback (LOCALHOST_APP_TUNNEL) or at the
// pod IP from the client's address (false), on the tunnel's port, and the app reads a
// PROXY v2 header naming the client, the CONNECT's address and the client's identity
// (TLV 0xD0), parsed here by go-proxyproto; a NONE tunnel moves the port only.
func TestAppTunnel(t *testing.T) {
	tests := []struct {
		name     string
		protocol workloadapi.ApplicationTunnel_Protocol
		onPodIP  bool
		listen   string // where the app listens
		header   bool
	}{
		{"PROXY on loopback", workloadapi.ApplicationTunnel_PROXY, false, "127.0.0.1", true},
		{"PROXY on the pod IP (LOCALHOST_APP_TUNNEL=false)", workloadapi.ApplicationTunnel_PROXY, true, "127.0.11.3", true},
		{"NONE: the tunnel's port, no header", workloadapi.ApplicationTunnel_NONE, false, "127.0.11.3", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ztest.NoLeaks(t)
			b := newBed(t, func(o *proxy.Options) { o.AppTunnelOnPodIP = tt.onPodIP })
			l, err := net.Listen("tcp", tt.listen+":0")
			if err != nil {
				t.Fatal(err)
			}
			port := l.Addr().(*net.TCPAddr).Port
			seen := make(chan string, 1)
			ztest.Serve(t, l, func(c net.Conn) {
				c.SetDeadline(time.Now().Add(10 * time.Second))
				r := bufio.NewReader(c)
				if !tt.header {
					line, _ := r.ReadString('\n')
					seen <- "plain " + line
					return
				}
				h, err := proxyproto.Read(r)
				if err != nil {
					seen <- "bad header: " + err.Error()
					return
				}
				src, dst, _ := h.TCPAddrs()
				tlvs, _ := h.TLVs()
				id := ""
				for _, tlv := range tlvs {
					if tlv.Type == 0xD0 {
						id = string(tlv.Value)
					}
				}
				seen <- fmt.Sprintf("v%d proxy=%v %s→%s %s from %s", h.Version, h.Command == proxyproto.PROXY, src.IP, dst, id, c.RemoteAddr().(*net.TCPAddr).IP)
			})
			w := ztest.Workload("default", "echo-3", "127.0.11.3")
			w.Uid, w.ServiceAccount, w.Node = "b//echo-3", "echo", "b"
			w.ApplicationTunnel = &workloadapi.ApplicationTunnel{Protocol: tt.protocol, Port: uint32(port)}
			b.b.store.Apply(state.Update{Addresses: ztest.AsAddresses(w)})
			cert, _ := b.ca.Fetch(context.Background(), sleepID)
			req := &hbone.Request{Authority: "127.0.11.3:9000"}
			if err := b.hboneRequest(t, cert, sleepIP, "127.0.11.3", req, func(st *hbone.Stream) {
				fmt.Fprint(st, "hello\n")
			}); err != nil {
				t.Fatal(err)
			}
			got := <-seen
			want := "plain hello\n"
			if tt.header {
				from := "127.0.0.1" // loopback, the client's address in the header only
				if tt.onPodIP {
					from = sleepIP.String() // the client's address, kept
				}
				want = fmt.Sprintf("v2 proxy=true %s→127.0.11.3:9000 %s from %s", sleepIP, sleepID, from)
			}
			if got != want {
				t.Fatalf("the app saw %q, want %q", got, want)
			}
		})
	}
}
