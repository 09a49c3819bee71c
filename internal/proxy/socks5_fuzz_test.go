package proxy

import (
	"io"
	"net"
	"sync"
	"testing"

	"github.com/ztunnel-go/ztunnel/internal/state"
)

// FuzzSocks5Handshake: whatever a local client sends on 15080 ends the handshake with a
// target or an error, never a panic or a hang (the input ends, so every read ends).
func FuzzSocks5Handshake(f *testing.F) {
	for _, in := range [][]byte{
		{5, 1, 0, 5, 1, 0, 1, 10, 0, 0, 1, 0, 80},
		{5, 1, 0, 5, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 80},
		append([]byte{5, 1, 0, 5, 1, 0, 3, 4}, "echo\x00\x50"...),
		{5, 0}, {4, 1, 0}, {5, 1, 2}, {5, 1, 0, 5, 2, 0, 1}, {5, 1, 0, 5, 1, 0, 9},
	} {
		f.Add(in)
	}
	p := New(Options{State: state.NewStore()})
	f.Fuzz(func(t *testing.T, in []byte) {
		client, server := net.Pipe()
		var wg sync.WaitGroup
		wg.Go(func() { client.Write(in); client.Close() })
		wg.Go(func() { io.Copy(io.Discard, client) })
		target, _, err := p.socksHandshake(server)
		server.Close()
		wg.Wait()
		if err == nil && !target.IsValid() {
			t.Errorf("%x: handshake succeeded without a target", in)
		}
	})
}
