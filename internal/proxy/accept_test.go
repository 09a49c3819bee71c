package proxy

import (
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/ztunnel-go/ztunnel/internal/logging"
	"github.com/ztunnel-go/ztunnel/internal/state"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// emfileListener fails its first Accepts as a process out of descriptors does.
type emfileListener struct {
	net.Listener
	fails atomic.Int32
}

func (l *emfileListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// Out of descriptors, the accept loop waits longer after each failure (5 ms doubling
// to 1 s, as net/http does) instead of spinning, and serves again once it can
// (catalogue FT-10).
func TestAcceptBacksOffWhenOutOfDescriptors(t *testing.T) {
	ztest.NoLeaks(t)
	logs := &ztest.LogBuffer{}
	log, _, _ := logging.New(logs, "plain", "info")
	p := New(Options{State: state.NewStore(), Logger: log})
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &emfileListener{Listener: inner}
	l.fails.Store(5)
	served := make(chan struct{})
	var conns, loop sync.WaitGroup
	loop.Go(func() {
		p.acceptLoop(boundListener{l: l, handle: func(c net.Conn, _ *liveConn) { c.Close(); close(served) }}, &conns)
	})
	c, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	<-served
	c.Close()
	l.Close()
	loop.Wait()
	conns.Wait()
	for _, want := range []string{"retry_in=5ms", "retry_in=10ms", "retry_in=20ms", "retry_in=40ms", "retry_in=80ms"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no %s in the log:\n%s", want, logs)
		}
	}
}
