package ztest

import (
	"net"
	"sync"
	"testing"
)

// Serve hands each connection l accepts to h, in a goroutine of its own, and closes it
// when h returns; when the test ends, l is closed and every handler joined.
func Serve(t testing.TB, l net.Listener, h func(net.Conn)) {
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { defer c.Close(); h(c) })
		}
	})
	t.Cleanup(func() { l.Close(); wg.Wait() })
}
