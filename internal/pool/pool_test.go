package pool_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/test/bufconn"

	"github.com/ztunnel-go/ztunnel/internal/hbone"
	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/pool"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	sleepID   = identity.New("cluster.local", "foo", "sleep")
	otherID   = identity.New("cluster.local", "foo", "other")
	httpbinID = identity.New("cluster.local", "default", "httpbin")
)

// server is a plain-TCP HBONE server whose streams stay open until release closes.
type server struct {
	addr    netip.AddrPort
	release chan struct{}
	accepts atomic.Int32
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   []*hbone.Conn // guarded by mu
}

// closeAll closes the server's connections abruptly.
func (s *server) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
}

// goAwayAll tells every client to open no new streams.
func (s *server) goAwayAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.GoAway()
	}
}

func newServer(t *testing.T) *server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{addr: netip.MustParseAddrPort(l.Addr().String()), release: make(chan struct{})}
	s.wg.Go(func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			s.accepts.Add(1)
			s.wg.Go(func() {
				sc, err := hbone.NewServerConn(nc, hbone.Settings{})
				if err != nil {
					nc.Close()
					return
				}
				s.mu.Lock()
				s.conns = append(s.conns, sc)
				s.mu.Unlock()
				sc.Serve(func(st *hbone.Stream) { st.Respond(200); <-s.release; st.Close() })
			})
		}
	})
	t.Cleanup(func() { l.Close(); s.wg.Wait() })
	return s
}

func dialer(dials *atomic.Int32, k pool.Key) pool.DialFunc {
	return func(ctx context.Context) (*hbone.Conn, error) {
		dials.Add(1)
		var d net.Dialer
		nc, err := d.DialContext(ctx, "tcp", k.Addr.String())
		if err != nil {
			return nil, err
		}
		return hbone.NewClientConn(nc, hbone.Settings{})
	}
}

func runPool(t *testing.T, p *pool.Pool) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func connect(t *testing.T, p *pool.Pool, k pool.Key, dial pool.DialFunc) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := p.Connect(ctx, k, &hbone.Request{Authority: "10.0.0.1:80"}, dial)
	if err == nil {
		t.Cleanup(func() { st.Close() })
	}
	return err
}

func TestStreamsPerConnectionAndIdentitySeparation(t *testing.T) {
	ztest.NoLeaks(t)
	srv := newServer(t)
	defer close(srv.release)
	var dials atomic.Int32
	p := pool.New(pool.Options{})
	runPool(t, p)
	a := pool.NewKey(sleepID, []identity.Identity{httpbinID}, srv.addr, netip.MustParseAddr("127.0.0.1"))
	b := pool.NewKey(otherID, []identity.Identity{httpbinID}, srv.addr, netip.MustParseAddr("127.0.0.1"))
	var wg sync.WaitGroup
	for i := range 500 {
		wg.Go(func() {
			if err := connect(t, p, a, dialer(&dials, a)); err != nil {
				t.Error(err)
			}
		})
		if i%100 == 0 {
			wg.Go(func() {
				if err := connect(t, p, b, dialer(&dials, b)); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	if n := p.Conns(a); n > 5 {
		t.Errorf("500 tunnels of one key use %d connections, want at most 5", n)
	}
	if p.Conns(b) != 1 {
		t.Errorf("the other identity has %d connections, want its own 1", p.Conns(b))
	}
	if int(dials.Load()) != p.Conns(a)+p.Conns(b) {
		t.Errorf("%d dials for %d connections: handshakes were not shared", dials.Load(), p.Conns(a)+p.Conns(b))
	}
}

// Callers of a key whose dial is under way wait for that one dial and all get its
// error (Rust's pool: one connection attempt per key at a time).
func TestFailedDialIsSharedAndReported(t *testing.T) {
	ztest.NoLeaks(t)
	synctest.Test(t, func(t *testing.T) {
		var dials atomic.Int32
		boom := errors.New("connection refused")
		gate := make(chan struct{})
		p := pool.New(pool.Options{})
		dial := func(context.Context) (*hbone.Conn, error) { dials.Add(1); <-gate; return nil, boom }
		runPool(t, p)
		k := pool.NewKey(sleepID, nil, netip.MustParseAddrPort("127.0.0.1:1"), netip.Addr{})
		var wg sync.WaitGroup
		var failed atomic.Int32
		for range 10 {
			wg.Go(func() {
				if err := connect(t, p, k, dial); errors.Is(err, boom) {
					failed.Add(1)
				}
			})
		}
		synctest.Wait() // every caller is queued behind the one dial
		if n := dials.Load(); n != 1 {
			t.Errorf("%d dials under way for one key, want 1", n)
		}
		close(gate)
		wg.Wait()
		if failed.Load() != 10 || dials.Load() > 10 {
			t.Errorf("%d of 10 callers got the dial error, %d dials", failed.Load(), dials.Load())
		}
	})
}

// memDialer connects over in-memory connections (grpc's bufconn, buffered as sockets
// are) to an HBONE server whose streams end at once: a synctest bubble's clock only
// moves when every goroutine is durably blocked, which one reading a socket never is,
// and one waiting on bufconn's sync.Cond is. The returned stop ends the server.
func memDialer(serving *sync.WaitGroup) (pool.DialFunc, func()) {
	l := bufconn.Listen(1 << 20)
	serving.Go(func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			serving.Go(func() {
				sc, err := hbone.NewServerConn(nc, hbone.Settings{})
				if err != nil {
					nc.Close()
					return
				}
				sc.Serve(func(st *hbone.Stream) { st.Respond(200); st.Close() })
			})
		}
	})
	dial := func(ctx context.Context) (*hbone.Conn, error) {
		nc, err := l.DialContext(ctx)
		if err != nil {
			return nil, err
		}
		return hbone.NewClientConn(nc, hbone.Settings{})
	}
	return dial, func() { l.Close() }
}

// A connection with no stream for POOL_UNUSED_RELEASE_TIMEOUT is closed, within one
// reaper tick (a quarter of the timeout) after it, and not before (Rust's pool:
// pool_unused_release_timeout).
func TestIdleConnectionsReleased(t *testing.T) {
	ztest.NoLeaks(t)
	synctest.Test(t, func(t *testing.T) {
		const idle = 5 * time.Minute
		p := pool.New(pool.Options{IdleTimeout: idle})
		ctx, cancel := context.WithCancel(context.Background())
		var serving, running sync.WaitGroup
		dial, stop := memDialer(&serving)
		running.Go(func() { p.Run(ctx) })
		defer func() { cancel(); running.Wait(); stop(); serving.Wait() }()
		k := pool.NewKey(sleepID, nil, netip.MustParseAddrPort("10.0.0.2:15008"), netip.Addr{})
		st, err := p.Connect(ctx, k, &hbone.Request{Authority: "10.0.0.2:80"}, dial)
		if err != nil {
			t.Fatal(err)
		}
		st.Close()
		synctest.Wait() // the stream has ended: idle from now on
		time.Sleep(idle - time.Second)
		synctest.Wait()
		if p.Conns(k) != 1 {
			t.Fatalf("closed after %s idle, before its %s", idle-time.Second, idle)
		}
		time.Sleep(time.Second + idle/4)
		synctest.Wait()
		if p.Conns(k) != 0 {
			t.Errorf("still pooled after %s idle", idle+idle/4)
		}
	})
}

// A pooled connection whose peer died is not handed out again: the next tunnel of the
// key dials a new one (catalogue FT-8), and a peer's GOAWAY does the same for new
// streams while the old ones finish (FT-9 b).
func TestDeadOrLeavingConnectionsAreNotReused(t *testing.T) {
	ztest.NoLeaks(t)
	for _, end := range []string{"peer died", "peer sent GOAWAY"} {
		t.Run(end, func(t *testing.T) {
			srv := newServer(t)
			defer close(srv.release)
			var dials atomic.Int32
			var conns []*hbone.Conn
			p := pool.New(pool.Options{})
			runPool(t, p)
			k := pool.NewKey(sleepID, []identity.Identity{httpbinID}, srv.addr, netip.MustParseAddr("127.0.0.1"))
			dialK := func(ctx context.Context) (*hbone.Conn, error) {
				var d net.Dialer
				nc, err := d.DialContext(ctx, "tcp", k.Addr.String())
				if err != nil {
					return nil, err
				}
				dials.Add(1)
				c, err := hbone.NewClientConn(nc, hbone.Settings{})
				if c != nil {
					conns = append(conns, c)
				}
				return c, err
			}
			if err := connect(t, p, k, dialK); err != nil {
				t.Fatal(err)
			}
			if end == "peer died" {
				srv.closeAll() // its sockets go, as when the peer's process dies
			} else {
				srv.goAwayAll()
			}
			ztest.Eventually(t, "the first connection is no longer usable", func() bool { return !conns[0].Usable() })
			if err := connect(t, p, k, dialK); err != nil {
				t.Fatal(err)
			}
			if dials.Load() != 2 {
				t.Errorf("%d dials, want a new connection for the second tunnel", dials.Load())
			}
		})
	}
}

// With Spread, a key's streams fill SpreadAt per connection until Spread connections
// are open, then share them up to MaxStreams; a failing extra dial leaves the streams
// on the connections there. Without it, one connection takes them all, as Rust's pool.
func TestSpreadOpensConnectionsForConcurrentStreams(t *testing.T) {
	ztest.NoLeaks(t)
	srv := newServer(t)
	defer close(srv.release)
	k := pool.NewKey(sleepID, []identity.Identity{httpbinID}, srv.addr, netip.MustParseAddr("127.0.0.1"))
	for _, tt := range []struct {
		spread, streams, wantConns int
	}{{1, 12, 1}, {2, 4, 1}, {2, 5, 2}, {2, 12, 2}, {3, 12, 3}} {
		var dials atomic.Int32
		p := pool.New(pool.Options{Spread: tt.spread, SpreadAt: 4})
		runPool(t, p)
		for range tt.streams {
			if err := connect(t, p, k, dialer(&dials, k)); err != nil {
				t.Fatal(err)
			}
		}
		if n := p.Conns(k); n != tt.wantConns || int(dials.Load()) != n {
			t.Errorf("spread %d, %d streams: %d connections (%d dials), want %d", tt.spread, tt.streams, n, dials.Load(), tt.wantConns)
		}
	}
	var dials atomic.Int32
	p := pool.New(pool.Options{Spread: 2, SpreadAt: 1})
	runPool(t, p)
	if err := connect(t, p, k, dialer(&dials, k)); err != nil {
		t.Fatal(err)
	}
	failing := func(context.Context) (*hbone.Conn, error) { return nil, errors.New("no route") }
	if err := connect(t, p, k, failing); err != nil {
		t.Errorf("a failed extra connection failed the stream: %v", err)
	}
	if p.Conns(k) != 1 {
		t.Errorf("%d connections after the extra dial failed, want 1", p.Conns(k))
	}
}
