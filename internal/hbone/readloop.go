package hbone

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

// Handler serves one accepted CONNECT stream; it must Respond, then use the stream.
type Handler func(*Stream)

// Run reads the client connection until it ends; the pool runs it in a goroutine.
func (c *Conn) Run() error {
	c.startPings()
	return c.teardown(c.readLoop(nil))
}

// Serve reads the server connection, running h for every new stream. It returns when the
// connection has ended and every handler has returned.
func (c *Conn) Serve(h Handler) error {
	var wg sync.WaitGroup
	c.startPings()
	err := c.readLoop(func(s *Stream) {
		wg.Go(func() {
			defer c.handlerDone()
			if s.req.tooLarge {
				s.Respond(431) // RFC 9113 §10.5.1: the header list exceeded our limit
				return
			}
			h(s)
		})
	})
	err = c.teardown(err)
	wg.Wait()
	return err
}

func (c *Conn) readLoop(accept func(*Stream)) error {
	for {
		fh, f, err := c.readFrame()
		switch {
		case err == nil && f == nil: // a DATA frame went straight into its stream
		case err == nil:
			err = c.handle(f, accept)
		default:
			var se http2.StreamError
			if errors.As(err, &se) { // the framer found a stream error in a frame it parsed
				err = c.onFramerStreamError(fh, se)
			}
		}
		if err == nil && c.controlFlooded() {
			err = ErrFlood
		}
		if err != nil {
			if code, ok := goAwayCode(err); ok {
				c.goAwayAndLinger(code, c.errReason(err))
			}
			return err
		}
		c.tryFlushControl() // what handling queued under c.mu: resets, window updates
	}
}

// readFrame returns the next frame the framer parses, or nil and no error when a
// DATA frame's payload went straight into its stream's buffer. A PRIORITY frame of
// the wrong size is a stream error (§6.3), which the framer would make a connection
// error: it is read here.
func (c *Conn) readFrame() (http2.FrameHeader, http2.Frame, error) {
	fh, err := c.fr.ReadFrameHeader()
	if err != nil {
		return fh, nil, err
	}
	switch {
	case fastData(fh):
		handled, err := c.readData(fh)
		if err != nil || handled {
			return fh, nil, err
		}
	case fh.Type == http2.FramePriority && fh.Length != 5 && fh.StreamID != 0 && fh.Length <= c.local.MaxFrameSize:
		if _, err := io.CopyN(io.Discard, c.nc, int64(fh.Length)); err != nil {
			return fh, nil, err
		}
		return fh, nil, http2.StreamError{StreamID: fh.StreamID, Code: http2.ErrCodeFrameSize,
			Cause: fmt.Errorf("PRIORITY frame of %d bytes, not 5", fh.Length)}
	}
	f, err := c.fr.ReadFrameForHeader(fh)
	return fh, f, err
}

// onFramerStreamError answers a stream error the framer reported: a WINDOW_UPDATE of
// 0, a malformed header block (invalid names or values, pseudo-headers unknown,
// repeated or after regular fields: §8.2.1, §8.3), or a PRIORITY of the wrong size.
func (c *Conn) onFramerStreamError(fh http2.FrameHeader, se http2.StreamError) error {
	reason := fmt.Sprintf("%v frame on stream %d: %v", fh.Type, se.StreamID, c.framerDetail(se))
	c.mu.Lock()
	defer c.mu.Unlock()
	st, s := c.stateLocked(se.StreamID)
	switch {
	case fh.Type == http2.FrameHeaders && se.Cause == nil:
		// The framer says nothing more of a HEADERS frame padded beyond its payload,
		// which §6.2 makes a connection error.
		return connError(http2.ErrCodeProtocol, "HEADERS frame on stream %d padded beyond its payload", se.StreamID)
	case st == stateIdle && fh.Type == http2.FrameHeaders && c.peerOpens(se.StreamID) && !c.client:
		// A malformed request: its HEADERS opened the stream, which ends at once.
		c.lastPeerID = se.StreamID
		return c.refuseLocked(se.StreamID, se.Code, reason)
	case st == stateIdle: // RST_STREAM is forbidden on an idle stream (§6.4)
		return connError(se.Code, "%s", reason)
	case s == nil && c.causeLocked(se.StreamID) == closedByUs:
		return nil // already reset by us: discarded
	}
	return c.streamErrorLocked(se.StreamID, se.Code, reason)
}

func (c *Conn) framerDetail(se http2.StreamError) error {
	if se.Cause != nil {
		return se.Cause
	}
	if d := c.fr.ErrorDetail(); d != nil {
		return d
	}
	return errors.New(se.Code.String())
}

// errReason says what a connection-ending error was, for CountError.
func (c *Conn) errReason(err error) string {
	var pe protocolError
	if errors.As(err, &pe) {
		return pe.reason
	}
	if d := c.fr.ErrorDetail(); d != nil {
		return d.Error()
	}
	return err.Error()
}

// protocolError is a connection error we detected; the peer is told its code in a GOAWAY.
type protocolError struct {
	code   http2.ErrCode
	reason string
}

func (e protocolError) Error() string { return fmt.Sprintf("%v: %s", e.code, e.reason) }

// goAwayCode is the GOAWAY code for a connection-ending error, if the peer broke the
// protocol (rather than the connection breaking).
func goAwayCode(err error) (http2.ErrCode, bool) {
	var pe protocolError
	var ce http2.ConnectionError
	switch {
	case errors.Is(err, ErrFlood):
		return http2.ErrCodeEnhanceYourCalm, true
	case errors.As(err, &pe):
		return pe.code, true
	case errors.As(err, &ce):
		return http2.ErrCode(ce), true
	case errors.Is(err, http2.ErrFrameTooLarge):
		return http2.ErrCodeFrameSize, true
	}
	return 0, false
}

// startPings sends a PING every interval; one unanswered for the timeout ends the
// connection, so a silent peer is noticed.
func (c *Conn) startPings() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pingTimer = time.AfterFunc(c.local.PingInterval, c.ping)
}

func (c *Conn) ping() {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	if !c.pingSent.IsZero() && time.Since(c.pingSent) >= c.local.PingTimeout {
		c.mu.Unlock()
		c.fail(ErrPingFailed)
		return
	}
	send := c.pingSent.IsZero()
	if send {
		c.pingSent = time.Now()
	}
	c.pingTimer.Reset(c.local.PingInterval)
	c.mu.Unlock()
	if send {
		c.wmu.Lock()
		c.fr.WritePing(false, [8]byte{'z', 't', 'u', 'n', 'n', 'e', 'l'})
		c.unlockW()
	}
}

// fail ends the connection with err (a write error, a missed PING) and returns err.
func (c *Conn) fail(err error) error {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	c.nc.Close()
	return err
}

// teardown runs when the read loop ends: every stream fails, waiters wake up. It
// returns why the connection ended: the reason fail recorded (a missed PING, a write
// error), which made the read fail, or else the read loop's error.
func (c *Conn) teardown(err error) error {
	c.mu.Lock()
	if c.err == nil {
		c.err = fmt.Errorf("%w: %v", ErrConnClosed, err)
	} else {
		err = c.err
	}
	if c.pingTimer != nil {
		c.pingTimer.Stop()
	}
	for _, s := range c.streams {
		if s.resetErr == nil {
			s.resetErr = c.err
		}
		s.removeLocked(closedByUs)
	}
	after := c.afterClose
	c.afterClose, c.ended = nil, true
	c.mu.Unlock()
	c.nc.Close()
	close(c.closed)
	for _, f := range after {
		f()
	}
	return err
}
