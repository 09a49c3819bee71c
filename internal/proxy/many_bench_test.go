package proxy_test

import (
	"io"
	"runtime"
	"sync"
	"testing"
	"time"
)

// BenchmarkTunnelUploadMany is BenchmarkTunnelUpload over 100 tunnels at once, most
// of them on one pooled connection: the receive side's buffering, where the streams
// share the connection window. peak-heap-MB is the highest HeapInuse seen (sampled
// every 50 ms, garbage included), both proxies and the sink app together.
func BenchmarkTunnelUploadMany(b *testing.B) {
	bed := newBed(b)
	const n = 100
	conns := make([]interface {
		io.Writer
		Close() error
	}, n)
	for i := range conns {
		c, code := bed.socks(b, sleepIP, "127.0.11.1:9001")
		if code != 0 {
			b.Fatal(code)
		}
		conns[i] = c
	}
	var peak uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
	})
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(buf)))
	var work sync.WaitGroup
	per := b.N/n + 1
	b.ResetTimer()
	for _, c := range conns {
		work.Go(func() {
			for range per {
				if _, err := c.Write(buf); err != nil {
					return
				}
			}
		})
	}
	work.Wait()
	close(stop)
	wg.Wait()
	b.ReportMetric(float64(peak)/1e6, "peak-heap-MB")
	for _, c := range conns {
		c.Close()
	}
}
