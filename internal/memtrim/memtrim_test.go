package memtrim

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const mib = 1 << 20

// One trim per burst, once it is over, and only when the heap holds enough beyond
// what the last trim left.
func TestTrimsOnceWhenABurstEnds(t *testing.T) {
	tr := New(Options{})
	const ms = time.Millisecond
	steps := []struct {
		name  string
		alloc uint64        // allocated during the interval
		cpu   time.Duration // CPU used during the interval (of 2 s)
		held  uint64
		after uint64 // held after a trim
		want  bool
	}{
		{"start-up's heap, quiet", 1 * mib, 50 * ms, 40 * mib, 10 * mib, true},
		{"quiet again: already trimmed", 0, 0, 11 * mib, 0, false},
		{"a burst", 500 * mib, 1900 * ms, 200 * mib, 0, false},
		{"still busy", 100 * mib, 1500 * ms, 300 * mib, 0, false},
		{"quiet after it", 1 * mib, 100 * ms, 300 * mib, 30 * mib, true},
		{"quiet, 1,000 idle connections stay", 1 * mib, 10 * ms, 30 * mib, 0, false},
		{"1,000 small requests a second", mib + mib/2, 300 * ms, 31 * mib, 0, false},
		{"a burst that left little", 50 * mib, 900 * ms, 35 * mib, 0, false},
		{"quiet, under the slack", 0, 0, 37 * mib, 0, false},
		{"more connections: a trim that gives little", 80 * mib, 700 * ms, 60 * mib, 0, false},
		{"quiet", 0, 0, 60 * mib, 58 * mib, true},
		{"quiet: no second try", 0, 0, 58 * mib, 0, false},
		{"a connection storm starts a transfer", 50 * mib, 1200 * ms, 80 * mib, 0, false},
		{"bulk through pooled blocks: little allocated, CPU busy", mib, 1500 * ms, 120 * mib, 0, false},
		{"still bulk", mib, 1800 * ms, 120 * mib, 0, false},
		{"the transfer over", 0, 100 * ms, 120 * mib, 40 * mib, true},
	}
	var allocated uint64
	var cpu time.Duration
	prev := sample{}
	for _, s := range steps {
		allocated += s.alloc
		cpu += s.cpu
		cur := sample{allocated: allocated, cpu: cpu, held: s.held}
		got := tr.step(prev, cur)
		if got != s.want {
			t.Errorf("%s: trim %v, want %v", s.name, got, s.want)
		}
		if got {
			tr.floor = s.after // as Run does
		}
		prev = cur
	}
}

// A burst's garbage and pooled buffers go back to the system (free pages released by
// the runtime's scavenger) soon after the proxy goes quiet.
func TestRunGivesBackABurstsHeap(t *testing.T) {
	var pool sync.Pool
	burst := func() { // 64 MiB of 64 KiB buffers, through a pool, as the receive queue uses
		var held [][]byte
		for range 1024 {
			held = append(held, make([]byte, 64<<10))
		}
		for _, b := range held {
			pool.Put(&b)
		}
	}
	tr := New(Options{Every: 10 * time.Millisecond, Slack: 8 * mib})
	tr.trim()
	base := read().held // what this test binary holds at rest
	burst()
	if held := read().held; held < base+48*mib {
		t.Fatalf("the burst left %d MiB held over %d MiB, want its 64 MiB", (held-base)/mib, base/mib)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tr.Run(ctx); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for read().held > base+16*mib && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if held := read().held; held > base+16*mib {
		t.Errorf("the heap still holds %d MiB over its %d MiB at rest after the burst", (held-base)/mib, base/mib)
	}
	runtime.KeepAlive(&pool)
}

// Run stops at once when its context ends, whatever its period.
func TestRunStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := New(Options{Every: time.Hour})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { tr.Run(ctx); close(done) }()
		cancel()
		<-done
	})
}
