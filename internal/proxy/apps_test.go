package proxy_test

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
	"syscall"
)

// The apps of the adversarial tests, with what they saw, for the tests to read.
var (
	countAccepts atomic.Int64 // connections countApp accepted
	countBytes   atomic.Int64 // bytes countApp received
	sunk         = make(chan int64, 16)
	ends         = make(chan string, 16) // how watchEnd's input ended: "EOF" or "reset"
)

// countApp counts connections and bytes: a refused CONNECT must reach neither.
func countApp(c net.Conn) {
	countAccepts.Add(1)
	n, _ := io.Copy(io.Discard, c)
	countBytes.Add(n)
}

// dumpThenSink sends 10 MiB and half-closes, then reads the client's upload to its end
// and reports its size (catalogue DI-3).
func dumpThenSink(c net.Conn) {
	c.Write(make([]byte, 10<<20))
	c.(*net.TCPConn).CloseWrite()
	n, _ := io.Copy(io.Discard, c)
	sunk <- n
}

// resetAfter5MiB reads 5 MiB and aborts (catalogue DI-4).
func resetAfter5MiB(c net.Conn) {
	io.CopyN(io.Discard, c, 5<<20)
	c.(*net.TCPConn).SetLinger(0)
}

// watchEnd reads until its input ends and says how (catalogue DI-4).
func watchEnd(c net.Conn) {
	_, err := io.Copy(io.Discard, c)
	switch {
	case err == nil:
		ends <- "EOF"
	case errors.Is(err, syscall.ECONNRESET):
		ends <- "reset"
	default:
		ends <- err.Error()
	}
}
