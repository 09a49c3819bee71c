package proxy

import (
	"io"
	"testing"
)

// endless reads forever, fills nothing (the copy loop's cost, not memory bandwidth).
type endless struct{ left int }

func (e *endless) Read(p []byte) (int, error) {
	if e.left <= 0 {
		return 0, io.EOF
	}
	e.left--
	return len(p), nil
}
func (e *endless) Write(p []byte) (int, error) { return len(p), nil }
func (e *endless) Close() error                { return nil }
func (e *endless) CloseWrite() error           { return nil }

// BenchmarkCopyHalf is one direction of a tunnel's copy loop, through its buffer pool:
// after warm-up it must not allocate.
func BenchmarkCopyHalf(b *testing.B) {
	dst, src := &endless{}, &endless{left: 1000}
	copyHalf(dst, src, func(int64) {}) // warm the pools
	b.ReportAllocs()
	for b.Loop() {
		src.left = 100
		if _, err := copyHalf(dst, src, func(int64) {}); err != nil {
			b.Fatal(err)
		}
	}
}
