package xds_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	discoverypb "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/ztunnel-go/ztunnel/internal/istiod"
	"github.com/ztunnel-go/ztunnel/internal/state"
	"github.com/ztunnel-go/ztunnel/internal/xds"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// refusing is an istiod that ends every delta ADS stream at once, noting when.
type refusing struct {
	discoverypb.UnimplementedAggregatedDiscoveryServiceServer
	mu       sync.Mutex
	attempts []time.Time // guarded by mu
}

func (r *refusing) DeltaAggregatedResources(discoverypb.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) error {
	r.mu.Lock()
	r.attempts = append(r.attempts, time.Now())
	r.mu.Unlock()
	return status.Error(codes.Unavailable, "not now")
}

// While istiod ends every stream, ztunnel tries again after 10 ms doubling to 15 s,
// each wait jittered by ±20 %, on a synctest bubble's fake clock, with istiod in memory
// (grpc's bufconn: a socket would never let the clock move). Rust's
// AdsClient::run_loop has the same bounds (INITIAL_BACKOFF 10 ms, MAX_BACKOFF 15 s),
// doubling before its first sleep and without jitter.
func TestReconnectBackoff(t *testing.T) {
	ztest.NoLeaks(t)
	synctest.Test(t, func(t *testing.T) {
		l := bufconn.Listen(1 << 20)
		srv, r := grpc.NewServer(), &refusing{}
		discoverypb.RegisterAggregatedDiscoveryServiceServer(srv, r)
		var wg sync.WaitGroup
		wg.Go(func() { srv.Serve(l) })
		defer func() { srv.Stop(); wg.Wait() }()
		c, err := xds.New(xds.ClientConfig{Address: "http://127.0.0.1:15010",
			Creds: istiod.CallCreds{Token: func() (string, error) { return "t", nil }, ClusterID: "c1"},
			DialOptions: []grpc.DialOption{grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
				return l.DialContext(ctx)
			})}}, state.NewStore(), nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var running sync.WaitGroup
		running.Go(func() { c.Run(ctx) })
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		cancel()
		running.Wait()
		r.mu.Lock()
		defer r.mu.Unlock()
		want := 10 * time.Millisecond
		for i := 1; i < len(r.attempts); i++ {
			gap := r.attempts[i].Sub(r.attempts[i-1])
			if gap < want*8/10 || gap > want*12/10 {
				t.Errorf("attempt %d came %s after the one before, want %s ± 20 %%", i+1, gap, want)
			}
			want = min(2*want, 15*time.Second)
		}
		if len(r.attempts) < 12 || want != 15*time.Second {
			t.Errorf("%d attempts in 2 min, backoff reached %s; want the 15 s cap reached", len(r.attempts), want)
		}
	})
}
