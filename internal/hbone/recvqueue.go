package hbone

import "sync"

// recvBlock is the size of the pooled blocks a stream's received bytes wait in: four
// full-record DATA frames, one read(2) of mtls.Transport.
const recvBlock = 64 << 10

var recvPool = sync.Pool{New: func() any { b := make([]byte, 0, recvBlock); return &b }}

// recvQueue holds a stream's received, unread bytes in pooled blocks, so that what a
// stream holds follows its backlog and goes back to the pool as it drains. One growing
// buffer per stream kept its largest size for the stream's life: 100 bulk streams on
// one connection, each of which once had most of the connection window, held ~800 MB
// of heap at peak in BenchmarkTunnelUploadMany, where the bytes in flight are at most
// the 16 MiB window. An idle stream holds no block.
//
// Guarded by the connection's mutex. The read loop fills the last block outside it,
// between fill and commit; while filling is set nothing recycles that block, and
// readers only ever see committed bytes. Blocks WriteTo detaches are its own until it
// recycles them.
type recvQueue struct {
	blocks  []*[]byte // each block's length is what was committed to it
	off     int       // read offset in the first block
	size    int       // unread bytes
	filling bool      // the read loop is reading into the last block's spare room
}

// fill returns room for n ≤ recvBlock bytes at the end of the queue, contiguous, and
// marks it as being filled: the last block if n fits, else a new one.
func (q *recvQueue) fill(n int) []byte {
	if len(q.blocks) > 0 {
		if t := *q.blocks[len(q.blocks)-1]; cap(t)-len(t) >= n {
			q.filling = true
			return t[len(t) : len(t)+n]
		}
	}
	b := recvPool.Get().(*[]byte)
	*b = (*b)[:0]
	q.blocks = append(q.blocks, b)
	q.filling = true
	return (*b)[:n]
}

// commit ends a fill: n bytes (0 when they are discarded) join the unread ones.
func (q *recvQueue) commit(n int) {
	q.filling = false
	t := q.blocks[len(q.blocks)-1]
	*t = (*t)[:len(*t)+n]
	q.size += n
	if q.size == 0 {
		q.consume(0) // a discarded fill leaves an empty block to give back
	}
}

// last returns the newest n unread bytes when they sit in one block (the frame just
// committed, for the read loop to write itself).
func (q *recvQueue) last(n int) ([]byte, bool) {
	t := *q.blocks[len(q.blocks)-1]
	if len(q.blocks) == 1 && len(t)-q.off < n || len(t) < n {
		return nil, false
	}
	return t[len(t)-n:], true
}

// append copies data in (the framer's path: padded frames, and frames larger than a
// block).
func (q *recvQueue) append(data []byte) {
	for len(data) > 0 {
		room := recvBlock
		if len(q.blocks) > 0 {
			t := *q.blocks[len(q.blocks)-1]
			room = cap(t) - len(t)
		}
		if room == 0 {
			room = recvBlock
		}
		n := min(room, len(data))
		copy(q.fill(n), data[:n])
		q.commit(n)
		data = data[n:]
	}
}

// read copies unread bytes into p.
func (q *recvQueue) read(p []byte) int {
	n := 0
	for n < len(p) && q.size > 0 {
		k := copy(p[n:], (*q.blocks[0])[q.off:])
		q.consume(k)
		n += k
	}
	return n
}

// consume drops n unread bytes from the front, giving back every block it empties
// except one being filled.
func (q *recvQueue) consume(n int) {
	q.off += n
	q.size -= n
	for len(q.blocks) > 0 && q.off == len(*q.blocks[0]) {
		if len(q.blocks) == 1 && q.filling {
			return
		}
		recvPool.Put(q.blocks[0])
		q.popFront()
	}
}

func (q *recvQueue) popFront() {
	n := copy(q.blocks, q.blocks[1:])
	q.blocks[n] = nil
	q.blocks = q.blocks[:n]
	q.off = 0
}

// takeAll hands every unread byte to WriteTo: it appends them to segs and the blocks
// it detaches to owned, which the caller gives back with release once written. A block
// being filled stays in the queue, its written part counted as read.
func (q *recvQueue) takeAll(segs [][]byte, owned []*[]byte) ([][]byte, []*[]byte, int) {
	total := q.size
	for len(q.blocks) > 0 && q.size > 0 {
		b := q.blocks[0]
		segs = append(segs, (*b)[q.off:])
		if len(q.blocks) == 1 && q.filling {
			q.consume(len(*b) - q.off)
			break
		}
		q.size -= len(*b) - q.off
		owned = append(owned, b)
		q.popFront()
	}
	return segs, owned, total
}

// release gives back the blocks takeAll detached.
func release(owned []*[]byte) {
	for i, b := range owned {
		recvPool.Put(b)
		owned[i] = nil
	}
}
