package hbone

import "golang.org/x/net/http2"

// control is a frame the read loop must send. The read loop never waits for the write
// lock: if the writer holding it is stuck on a full socket while the peer's writer is
// stuck the same way, both read loops would stop and neither side would read again.
// Control frames are queued and flushed by whoever holds or next takes the write lock.
type control struct {
	kind uint8 // http2.FrameType of the frame
	id   uint32
	code http2.ErrCode
	inc  uint32
	ping [8]byte
}

func (c *Conn) queueControl(f control) {
	c.pushControl(f)
	c.tryFlushControl()
}

// pushControl queues f without trying to send it, for callers holding c.mu: the next
// holder of the write lock, or the read loop after its current frame, sends it.
func (c *Conn) pushControl(f control) {
	c.ctlMu.Lock()
	if len(c.ctl) < int(c.local.MaxQueuedControl) {
		c.ctl = append(c.ctl, f)
	} else {
		c.ctlFlood = true
	}
	c.ctlMu.Unlock()
}

// tryFlushControl flushes queued control frames if the write lock is free.
func (c *Conn) tryFlushControl() {
	for c.hasControl() && c.wmu.TryLock() {
		c.flushControlLocked()
		err := c.endBatchLocked()
		c.wmu.Unlock()
		if err != nil {
			c.fail(err)
			return
		}
	}
}

// controlFlooded reports a peer that let more than MaxQueuedControl answers queue up.
func (c *Conn) controlFlooded() bool {
	c.ctlMu.Lock()
	defer c.ctlMu.Unlock()
	return c.ctlFlood
}

func (c *Conn) hasControl() bool {
	c.ctlMu.Lock()
	defer c.ctlMu.Unlock()
	return len(c.ctl) > 0
}

// unlockW releases the write lock after sending what the read loop queued meanwhile,
// with the batch's frames, in one write when the transport gathers them.
func (c *Conn) unlockW() {
	c.flushControlLocked()
	err := c.endBatchLocked()
	c.wmu.Unlock()
	if err != nil {
		c.fail(err)
		return
	}
	c.tryFlushControl()
}

// beginBatchLocked gathers the frames written from now until endBatchLocked; only worth
// it for more than one record.
func (c *Conn) beginBatchLocked() {
	if c.batch != nil && !c.batching {
		c.batch.Begin()
		c.batching = true
	}
}

func (c *Conn) endBatchLocked() error {
	if !c.batching {
		return nil
	}
	c.batching = false
	return c.batch.Flush()
}

func (c *Conn) flushControlLocked() {
	c.ctlMu.Lock()
	pending := c.ctl
	c.ctl = c.spare[:0]
	c.ctlMu.Unlock()
	if len(pending) > 1 { // one record goes as well alone: a batch would only copy it
		c.beginBatchLocked()
	}
	for _, f := range pending {
		switch http2.FrameType(f.kind) {
		case http2.FrameSettings:
			c.fr.WriteSettingsAck()
		case http2.FramePing:
			c.fr.WritePing(true, f.ping)
		case http2.FrameWindowUpdate:
			c.fr.WriteWindowUpdate(f.id, f.inc)
		case http2.FrameRSTStream:
			c.fr.WriteRSTStream(f.id, f.code)
		case http2.FrameGoAway:
			c.fr.WriteGoAway(f.id, f.code, nil)
		}
	}
	c.ctlMu.Lock()
	c.spare = pending[:0]
	c.ctlMu.Unlock()
}
