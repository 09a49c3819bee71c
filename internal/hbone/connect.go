package hbone

import (
	"context"
	"errors"
	"strconv"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// ErrNoCapacity: the connection cannot take another stream (peer's limit, our limit,
// GOAWAY, or closed); the pool then uses or opens another connection.
var ErrNoCapacity = errors.New("HBONE connection has no stream capacity")

// TryReserve takes a stream slot if this connection can open one under limit (and the
// peer's SETTINGS). The pool calls it while choosing a connection.
func (c *Conn) TryReserve(limit int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil || c.goAway || c.active >= min(limit, int(c.peerMaxStr)) || c.nextID >= 1<<31-1 {
		return false
	}
	c.active++ // the slot; OpenStream turns it into a stream
	return true
}

// Release gives back a slot taken with TryReserve that will not carry a stream.
func (c *Conn) Release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.active--
	c.lastUse = time.Now()
	c.closeIfDrainedLocked()
}

// Usable reports whether the connection may carry new streams at all.
func (c *Conn) Usable() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err == nil && !c.goAway
}

// IdleSince is when the last stream ended, or the zero time while streams are open.
func (c *Conn) IdleSince() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.active > 0 {
		return time.Time{}
	}
	return c.lastUse
}

// OpenStream sends a CONNECT on a slot taken with TryReserve and waits for the answer.
// A status other than 200 is a *StatusError and ends only this stream.
func (c *Conn) OpenStream(ctx context.Context, r *Request) (*Stream, error) {
	fields := []hpack.HeaderField{{Name: ":method", Value: "CONNECT"}, {Name: ":authority", Value: r.Authority}}
	for _, h := range [][2]string{{"baggage", r.Baggage}, {"forwarded", r.Forwarded}, {"traceparent", r.Traceparent}} {
		if h[1] != "" {
			fields = append(fields, hpack.HeaderField{Name: h[0], Value: h[1]})
		}
	}
	if n := r.ForwardedNetwork; n != nil {
		fields = append(fields, hpack.HeaderField{Name: "x-forwarded-network", Value: *n})
	}
	c.wmu.Lock() // stream ids must go out in order: allocate under the write lock
	c.mu.Lock()
	if c.err != nil || c.goAway {
		c.active-- // give the slot back
		c.mu.Unlock()
		c.unlockW()
		return nil, ErrNoCapacity
	}
	s := c.newStreamLocked(c.nextID)
	c.active-- // newStreamLocked counted it again; the reserved slot becomes this stream
	c.nextID += 2
	c.mu.Unlock()
	err := c.writeHeadersLocked(s.id, false, fields)
	c.unlockW()
	if err != nil {
		return nil, c.fail(err)
	}
	return s, s.awaitStatus(ctx)
}

func (s *Stream) awaitStatus(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		s.c.mu.Lock()
		s.cond.Broadcast()
		s.c.mu.Unlock()
	})
	defer stop()
	c := s.c
	c.mu.Lock()
	for s.status == 0 && s.resetErr == nil && ctx.Err() == nil {
		s.cond.Wait()
	}
	status, err := s.status, s.resetErr
	c.mu.Unlock()
	switch {
	case status == 200:
		return nil
	case status != 0:
		s.Close()
		return &StatusError{Code: status}
	case err != nil:
		return err
	}
	s.Reset(http2.ErrCodeCancel)
	return ctx.Err()
}

// Method is the request's :method.
func (r *Request) Method() string { return r.Other[":method"] }

// Respond answers the CONNECT. 200 opens the tunnel; any other status ends the stream.
func (s *Stream) Respond(status int, headers ...hpack.HeaderField) error {
	fields := append([]hpack.HeaderField{{Name: ":status", Value: strconv.Itoa(status)}}, headers...)
	end := status != 200
	c := s.c
	c.wmu.Lock()
	err := c.writeHeadersLocked(s.id, end, fields)
	c.unlockW()
	if err != nil {
		return c.fail(err)
	}
	c.mu.Lock()
	s.answered = true
	s.sentEnd = s.sentEnd || end
	c.mu.Unlock()
	if end {
		s.Close() // whatever the client still sends is not wanted
	}
	return nil
}
