package mtls

import (
	"net"
	"sync"
	"syscall"
)

// Transport sits between a tls.Conn and its TCP socket, so that HBONE costs fewer
// syscalls per byte than a plain TLS pipe. Go's tls.Conn writes each record (at most
// 16 KiB) at once, a write(2) per record, and reads about one record per read(2).
// Between Begin and Flush the records written are gathered and leave in one write;
// outside a batch (the handshake, alerts) writes go straight through. Reads take what
// the socket holds, up to readChunk, into a pooled buffer that goes back to the pool as
// soon as it is drained, so an idle connection holds none (readSocket, Linux).
// Writes are safe for concurrent use; reads come from one goroutine (tls.Conn's
// reader, which serialises them).
type Transport struct {
	net.Conn
	raw syscall.RawConn // nil: reads go straight to Conn

	// The reader's (one goroutine at a time).
	rbuf       *[]byte // what the last read brought, from roff to rend; nil when drained
	roff, rend int
	readFn     func(fd uintptr) bool // readOnce, made once
	rn         int                   // readOnce's outcome
	rerr       error

	mu       sync.Mutex // guards batching and buf
	batching bool
	buf      *[]byte // the records of the batch in progress; pooled between batches
}

// maxBatch bounds one batch's buffer: past it, Write sends what it holds first.
const maxBatch = 64 << 10

var batchPool = sync.Pool{New: func() any { b := make([]byte, 0, maxBatch+17<<10); return &b }}

// NewTransport wraps c, the TCP connection a tls.Conn will run over.
func NewTransport(c net.Conn) *Transport {
	t := &Transport{Conn: c}
	if sc, ok := c.(syscall.Conn); ok && chunkedReads {
		t.raw, _ = sc.SyscallConn()
	}
	return t
}

// Begin starts gathering writes.
func (t *Transport) Begin() {
	t.mu.Lock()
	t.batching = true
	t.mu.Unlock()
}

// Write gathers p during a batch, else writes it.
func (t *Transport) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.batching {
		return t.Conn.Write(p)
	}
	if t.buf == nil {
		t.buf = batchPool.Get().(*[]byte)
	}
	if len(*t.buf)+len(p) > maxBatch {
		if err := t.sendLocked(); err != nil {
			return 0, err
		}
	}
	*t.buf = append(*t.buf, p...)
	return len(p), nil
}

// Flush writes what the batch gathered, in one write, and ends the batch.
func (t *Transport) Flush() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.batching = false
	err := t.sendLocked()
	if t.buf != nil {
		batchPool.Put(t.buf)
		t.buf = nil
	}
	return err
}

func (t *Transport) sendLocked() error {
	if t.buf == nil || len(*t.buf) == 0 {
		return nil
	}
	_, err := t.Conn.Write(*t.buf)
	*t.buf = (*t.buf)[:0]
	return err
}

// readChunk is the most one read(2) takes: four records' worth. More (256 KiB) saves few
// syscalls more and, pooled per busy connection, doubled RSS at 1,000 req/s in bench/run.
const readChunk = 64 << 10

var readPool = sync.Pool{New: func() any { b := make([]byte, readChunk); return &b }}

// Read hands out what the last read brought, and reads again once it is drained.
func (t *Transport) Read(p []byte) (int, error) {
	if t.rbuf == nil {
		if t.raw == nil || len(p) >= readChunk {
			return t.Conn.Read(p)
		}
		if err := t.readSocket(); err != nil {
			return 0, err
		}
	}
	n := copy(p, (*t.rbuf)[t.roff:t.rend])
	if t.roff += n; t.roff == t.rend {
		readPool.Put(t.rbuf)
		t.rbuf = nil
	}
	return n, nil
}

// Buffered is how many bytes the last read brought that are not handed out yet; 0
// means no read buffer is held.
func (t *Transport) Buffered() int {
	if t.rbuf == nil {
		return 0
	}
	return t.rend - t.roff
}
