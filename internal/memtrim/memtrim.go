// Package memtrim gives the heap a burst of traffic left behind back to the system once
// the proxy is quiet. Go frees memory only in a collection, and a quiet proxy allocates
// too little to start one: until the runtime's forced collection, up to two minutes
// later, the buffers of the burst (pooled receive blocks, send buffers, TLS records)
// stay resident, where Rust ztunnel's allocator returns them as they are freed. After
// 100 bulk streams the bench's ztunnels held ~60 MB of such heap at 1,000 requests/s.
package memtrim

import (
	"context"
	"log/slog"
	"runtime"
	"runtime/metrics"
	"time"
)

// Options; zero values take the defaults.
type Options struct {
	Every time.Duration // how often to look (2 s)
	// Quiet: allocating less than this between two looks is quiet (2 MiB: 1,000 small
	// requests a second allocate well under it).
	Quiet uint64
	// QuietCPU: and using less CPU than this share of one core (0.3: 1,000 small
	// requests a second take about 0.15 here). Allocation alone would not do: the bulk
	// path allocates almost nothing (pooled blocks), so a proxy busy carrying
	// gigabytes looked quiet and was trimmed mid-transfer.
	QuietCPU float64
	Logger   *slog.Logger // a debug line per trim; nil: none
	// Slack: heap held beyond what the last trim left worth a trim (8 MiB). A trim
	// costs three collections, each about a millisecond per 10 MB of live heap.
	Slack uint64
}

// Trimmer is started by Run; New starts nothing.
type Trimmer struct {
	opts Options
	// trim is what a trim does (three runtime.GC); tests replace it.
	trim func()
	// armed: traffic came since the last trim. One trim per burst: heap that a trim
	// could not give back (live connections, fragmentation) is not worth a collection
	// every Every.
	armed bool // Run's own
	// floor: the heap held just after the last trim, what a quiet proxy holds. The
	// runtime's live-heap figure cannot stand in for it: it dates from the last
	// collection, which may have run mid-burst, counting every buffer then in use (and
	// since parked in a pool) as live.
	floor uint64 // Run's own
}

// New returns a trimmer with opts' zero values defaulted.
func New(opts Options) *Trimmer {
	if opts.Every <= 0 {
		opts.Every = 2 * time.Second
	}
	if opts.Quiet == 0 {
		opts.Quiet = 2 << 20
	}
	if opts.Slack == 0 {
		opts.Slack = 8 << 20
	}
	if opts.QuietCPU <= 0 {
		opts.QuietCPU = 0.3
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Trimmer{opts: opts, trim: trim, armed: true}
}

// trim runs three collections: the second frees what sat in a sync.Pool (kept one
// collection as its victim cache), and the third makes those pages old enough for the
// runtime's background scavenger, which releases only pages left free for a whole
// cycle; it then returns them, paced, within about a second. debug.FreeOSMemory would
// return them at once, but under the heap lock: every allocation meanwhile waits for
// its madvise(2)s, and a trim during the bench's latency phase doubled its p99.
func trim() {
	for range 3 {
		runtime.GC()
	}
}

// Run looks every Options.Every until ctx ends, and trims when the last interval was
// quiet, traffic came since the last trim, and the heap holds more than Slack beyond
// what the last trim left.
func (t *Trimmer) Run(ctx context.Context) {
	tick := time.NewTicker(t.opts.Every)
	defer tick.Stop()
	prev := read()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		cur := read()
		if t.step(prev, cur) {
			held := cur.held
			t.trim()
			cur = read()
			t.floor = cur.held - cur.free // the scavenger is returning the free pages
			t.opts.Logger.Debug("trimmed the heap after a burst", "held_mib", held>>20, "kept_mib", t.floor>>20)
		}
		prev = cur
	}
}

// sample is what the decision reads from runtime/metrics.
type sample struct {
	allocated uint64        // bytes allocated since start
	cpu       time.Duration // CPU time the process has used (user and system)
	held      uint64        // heap objects (live or not yet swept), free and unused span bytes: resident heap
	free      uint64        // of held, free pages not yet returned
}

var names = []string{"/gc/heap/allocs:bytes", "/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/free:bytes", "/memory/classes/heap/unused:bytes"}

func read() sample {
	s := make([]metrics.Sample, len(names))
	for i, n := range names {
		s[i].Name = n
	}
	metrics.Read(s)
	v := func(i int) uint64 {
		if s[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return s[i].Value.Uint64()
	}
	return sample{allocated: v(0), cpu: processCPU(), held: v(1) + v(2) + v(3), free: v(2)}
}

// step decides, from the last interval's samples, whether to trim now.
func (t *Trimmer) step(prev, cur sample) bool {
	busyCPU := time.Duration(t.opts.QuietCPU * float64(t.opts.Every))
	if cur.allocated-prev.allocated >= t.opts.Quiet || cur.cpu-prev.cpu >= busyCPU {
		t.armed = true
		return false
	}
	if !t.armed || cur.held <= t.floor+t.opts.Slack {
		return false
	}
	t.armed = false
	return true
}
