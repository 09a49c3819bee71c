package proxy

import (
	"context"
	"errors"
	"net"
	"slices"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/sockopt"
)

// handoverDelay is how long a draining proxy keeps accepting after it has steered new
// handshakes to its successor: those the kernel had already given its sockets finish
// within a round trip, or a SYN-ACK retransmission (1 s) when a packet was lost.
const handoverDelay = time.Second

// listenCounter is the optional part of Sockets that sees other ztunnels' listeners
// (HostSockets in a pod's namespace).
type listenCounter interface {
	Listening(port uint16) (int, error)
}

// handOver, at the start of a drain, gives the pod's ports to a successor ztunnel
// before the listeners close. With INPOD_PORT_REUSE both ztunnels listen on each port
// and the kernel splits new connections between them; closing a listener resets the
// handshakes it holds (a client sees "connection reset" on connect). So when a
// successor listens too, new handshakes are steered to it (sockopt.SteerToNewest),
// those already under way are still accepted and served for handoverDelay, and only
// then do the listeners close. Rust's ztunnel closes at once; this is an improvement
// its upgrades lack. Alone on its ports, a proxy closes at once.
func (p *Proxy) handOver(ctx context.Context) {
	counter, ok := p.deps.Sockets.(listenCounter)
	if !ok {
		return
	}
	p.mu.Lock()
	listeners := slices.Clone(p.listeners)
	p.mu.Unlock()
	steered := 0
	for _, b := range listeners {
		tl, ok := b.l.(*net.TCPListener)
		if !ok {
			continue
		}
		if n, err := counter.Listening(uint16(tl.Addr().(*net.TCPAddr).Port)); err != nil || n < 2 {
			continue
		}
		if err := sockopt.SteerToNewest(tl); errors.Is(err, sockopt.ErrNoReusePort) {
			continue // node mode: its IPv4 and IPv6 listeners of one port, not a successor
		} else if err != nil {
			p.log.Warn("cannot steer new connections to the new ztunnel", "addr", tl.Addr().String(), "error", err)
			continue
		}
		steered++
	}
	if steered == 0 {
		return
	}
	p.log.Info("handing the pod's listeners over to the new ztunnel", "listeners", steered, "delay", handoverDelay.String())
	select {
	case <-time.After(handoverDelay):
	case <-ctx.Done():
	}
}
