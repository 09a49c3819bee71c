package hbone_test

import (
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/net/http2"

	"github.com/ztunnel-go/ztunnel/internal/hbone"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// ended reports how our Conn ended, or false while it runs.
func (p *h2peer) endedNow() (error, bool) {
	select {
	case err := <-p.ended:
		p.ended <- err
		return err, true
	default:
		return nil, false
	}
}

// answerPings acks every PING until the connection ends; the caller joins wg.
func (p *h2peer) answerPings(wg *sync.WaitGroup) {
	wg.Go(func() {
		for {
			f, err := p.fr.ReadFrame()
			if err != nil {
				return
			}
			if ping, ok := f.(*http2.PingFrame); ok && !ping.IsAck() {
				p.fr.WritePing(true, ping.Data)
			}
		}
	})
}

// The keepalive PING, on the fake clock of a synctest bubble, pinning Rust's
// proxy::h2::do_ping_pong (PING_INTERVAL 10 s, PING_TIMEOUT 20 s, both roles): a silent
// peer is dropped 30 s after its last frame (the PING at 10 s, unanswered for 20 s) and
// not a moment before; a peer that answers is kept however long it idles.
func TestPingDeadlinesOnTheClock(t *testing.T) {
	for _, role := range []struct {
		name   string
		server bool
	}{{"our server", true}, {"our client", false}} {
		t.Run(role.name+", silent peer", func(t *testing.T) {
			ztest.NoLeaks(t)
			synctest.Test(t, func(t *testing.T) {
				p := newPeerOver(t, inMemory, role.server, hbone.Settings{}, serverHandler)
				time.Sleep(30*time.Second - time.Millisecond)
				synctest.Wait()
				if err, ended := p.endedNow(); ended {
					t.Fatalf("ended before 30 s of silence: %v", err)
				}
				time.Sleep(time.Millisecond)
				synctest.Wait()
				if err, ended := p.endedNow(); !ended || !errors.Is(err, hbone.ErrPingFailed) {
					t.Errorf("after 30 s of silence: ended %v with %v, want %v", ended, err, hbone.ErrPingFailed)
				}
			})
		})
		t.Run(role.name+", peer answers PINGs", func(t *testing.T) {
			ztest.NoLeaks(t)
			synctest.Test(t, func(t *testing.T) {
				p := newPeerOver(t, inMemory, role.server, hbone.Settings{}, serverHandler)
				var wg sync.WaitGroup
				defer wg.Wait()
				defer p.nc.Close()
				p.answerPings(&wg)
				time.Sleep(10 * time.Minute)
				synctest.Wait()
				if err, ended := p.endedNow(); ended {
					t.Errorf("a peer answering every PING was dropped after 10 min idle: %v", err)
				}
			})
		})
	}
}
