//go:build race

package proxy_test

func transferSize() int64 { return 64 << 20 }
