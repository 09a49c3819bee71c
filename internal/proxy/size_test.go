//go:build !race

package proxy_test

// transferSize is 1 GiB each way; the race detector's build uses a smaller one (see
// size_race_test.go), since it slows byte copying about tenfold.
func transferSize() int64 { return 1 << 30 }
