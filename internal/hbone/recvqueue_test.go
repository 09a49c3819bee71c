package hbone

import (
	"bytes"
	"testing"
)

// pattern is n bytes that differ from their neighbours, starting at seed.
func pattern(seed, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte((seed + i) * 7)
	}
	return b
}

// The queue gives back every byte committed, in order, however frames straddle blocks
// and whichever way it is drained; an empty queue holds no block, and a block being
// filled survives a drain of everything before it.
func TestRecvQueueKeepsOrderAndReturnsBlocks(t *testing.T) {
	sizes := []int{1, maxRecordPayload, recvBlock, 7, recvBlock - 100, 200, 3 * recvBlock / 2}
	for _, drain := range []string{"read", "takeAll"} {
		var q recvQueue
		var want, got []byte
		for i, n := range sizes {
			data := pattern(i, n)
			want = append(want, data...)
			if n <= recvBlock {
				copy(q.fill(n), data)
				q.commit(n)
			} else {
				q.append(data)
			}
		}
		if q.size != len(want) {
			t.Fatalf("%s: size %d, want %d", drain, q.size, len(want))
		}
		switch drain {
		case "read":
			p := make([]byte, 5000)
			for q.size > 0 {
				n := q.read(p)
				got = append(got, p[:n]...)
			}
		case "takeAll":
			segs, owned, n := q.takeAll(nil, nil)
			for _, s := range segs {
				got = append(got, s...)
			}
			if n != len(want) || len(owned) == 0 {
				t.Errorf("takeAll: %d bytes in %d blocks, want %d", n, len(owned), len(want))
			}
			release(owned)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: the bytes came back changed or reordered (%d of %d)", drain, len(got), len(want))
		}
		if len(q.blocks) != 0 || q.size != 0 {
			t.Errorf("%s: drained queue holds %d blocks, %d bytes", drain, len(q.blocks), q.size)
		}
	}

	var q recvQueue
	copy(q.fill(10), pattern(0, 10))
	q.commit(10)
	dst := q.fill(20) // the read loop fills the same block while WriteTo takes all
	segs, owned, n := q.takeAll(nil, nil)
	if n != 10 || len(segs) != 1 || len(owned) != 0 || len(q.blocks) != 1 {
		t.Fatalf("takeAll during a fill: %d bytes, %d segments, %d detached, %d left", n, len(segs), len(owned), len(q.blocks))
	}
	copy(dst, pattern(10, 20))
	q.commit(20)
	if got, ok := q.last(20); !ok || !bytes.Equal(got, pattern(10, 20)) || q.size != 20 {
		t.Errorf("the fill that went on during takeAll: %v %v, size %d", ok, got, q.size)
	}
	q.consume(20)
	if len(q.blocks) != 0 {
		t.Errorf("the block outlived the bytes in it: %d blocks", len(q.blocks))
	}
}
