package hbone

import (
	"errors"
	"io"
	"time"

	"golang.org/x/net/http2"
)

// Flood limits of one connection. A peer may only make us do work in proportion to
// what it is allowed: handlers are capped at MaxStreams even when their streams were
// reset (Rapid Reset, CVE-2023-44487), refused or reset streams draw on a budget
// (MadeYouReset, CVE-2025-8671), and frames we must answer (PING, SETTINGS) queue only
// so far when the peer does not read our answers. Past a limit the connection ends
// with GOAWAY(ENHANCE_YOUR_CALM), as x/net's server and Envoy's flood limits do. The
// bounds are Settings: MaxQueuedControl, MaxEmptyData and ResetsPerSecond.

// ErrFlood ends a connection whose peer exceeded a flood limit.
var ErrFlood = errors.New("HBONE peer exceeded a flood limit")

// resetBudget is a token bucket for streams that end before doing useful work: reset
// by the peer before we answered, or refused. Burst and refill are both
// ResetsPerSecond (MaxStreams unless set), so a client that aborts its tunnels at a
// normal pace never hits it.
type resetBudget struct {
	tokens float64
	last   time.Time
}

// spendLocked takes one token; false when the budget is exhausted.
func (b *resetBudget) spendLocked(perSecond uint32, now time.Time) bool {
	burst := float64(perSecond)
	if b.last.IsZero() {
		b.tokens = burst
	} else {
		b.tokens = min(burst, b.tokens+now.Sub(b.last).Seconds()*burst)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// earlyEndLocked records a stream that ended before it was answered, or was refused;
// it returns ErrFlood when the budget is spent.
func (c *Conn) earlyEndLocked() error {
	if c.client || c.resets.spendLocked(c.local.ResetsPerSecond, time.Now()) {
		return nil
	}
	return ErrFlood
}

// lingerTime bounds goAwayAndLinger: a peer that neither reads nor stops sending is cut
// off after it.
const lingerTime = time.Second

// goAwayAndLinger tells a peer that broke the protocol why, and makes sure it can hear
// it: closing a socket with unread input makes the kernel send RST, which can destroy
// the GOAWAY still in flight. So the GOAWAY is written, and what the peer still sends
// is read and dropped for up to lingerTime (x/net's server does the same).
func (c *Conn) goAwayAndLinger(code http2.ErrCode, reason string) {
	c.countError("connection", code, reason)
	c.nc.SetDeadline(time.Now().Add(lingerTime))
	c.mu.Lock()
	last := c.goAwayIDLocked()
	c.mu.Unlock()
	c.pushControl(control{kind: uint8(http2.FrameGoAway), id: last, code: code})
	c.wmu.Lock()
	c.flushControlLocked()
	c.endBatchLocked()
	c.wmu.Unlock()
	io.Copy(io.Discard, io.LimitReader(c.nc, 1<<20))
}

func (c *Conn) countError(scope string, code http2.ErrCode, reason string) {
	if c.local.CountError != nil {
		c.local.CountError(scope, code.String(), reason)
	}
}

// goAwayIDLocked is the last stream id a GOAWAY names: the highest the peer opened
// (§6.8), and never more than a GOAWAY sent before said, since the peer may already
// have retried the streams above it elsewhere.
func (c *Conn) goAwayIDLocked() uint32 {
	if c.goAwaySent && c.goAwayID < c.lastPeerID {
		return c.goAwayID
	}
	c.goAwaySent, c.goAwayID = true, c.lastPeerID
	return c.goAwayID
}

// handlerDone frees a handler's slot when it returns.
func (c *Conn) handlerDone() {
	c.mu.Lock()
	c.handlers--
	c.mu.Unlock()
}

// countEmptyData tracks DATA frames that carry nothing.
func (c *Conn) countEmptyData(f *http2.DataFrame) error {
	if len(f.Data()) > 0 || f.StreamEnded() {
		c.emptyData = 0
		return nil
	}
	c.emptyData++
	if c.emptyData > int(c.local.MaxEmptyData) {
		return ErrFlood
	}
	return nil
}
