package certmgr

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// Run fetches queued certificates, at most MaxConcurrent at once, highest priority first,
// until ctx ends. It returns after every fetch it started has ended; waiting Gets then
// end with ErrClosed.
func (m *Manager) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for {
		m.startFetches(ctx, &wg)
		select {
		case <-ctx.Done():
			m.close()
			wg.Wait()
			return
		case <-m.wake:
		}
	}
}

func (m *Manager) startFetches(ctx context.Context, wg *sync.WaitGroup) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for m.inflight < m.opts.MaxConcurrent && m.queue.Len() > 0 {
		e := m.queue.pop()
		e.fetching = true
		m.inflight++
		prio := e.prio
		wg.Go(func() { m.fetch(ctx, e, prio) })
	}
}

func (m *Manager) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	for _, e := range m.entries {
		if e.timer != nil {
			e.timer.Stop()
		}
		if !e.fetching {
			e.err = ErrClosed
			close(e.changed)
			e.changed = make(chan struct{})
		}
	}
}

// fetch runs one attempt and records its outcome.
func (m *Manager) fetch(ctx context.Context, e *entry, prio Priority) {
	fctx, cancel := context.WithTimeout(ctx, m.opts.FetchTimeout)
	cert, err := m.fetcher.Fetch(fctx, e.id)
	cancel()

	m.mu.Lock()
	defer m.wakeDispatcher()
	defer m.mu.Unlock()
	m.inflight--
	e.fetching = false
	if m.entries[e.id] != e { // forgotten meanwhile: the result has no taker
		return
	}
	now := time.Now()
	if err == nil {
		e.cert, e.err, e.failures = cert, nil, 0
		m.scheduleLocked(e, renewAt(cert.NotBefore(), cert.NotAfter()).Sub(now))
		m.log.Info("certificate issued", "identity", e.id.String(), "priority", prio.String(),
			"expires", cert.NotAfter().UTC().Format(time.RFC3339))
	} else {
		m.failedLocked(e, err, now)
	}
	if m.closed {
		e.err = ErrClosed
	}
	close(e.changed)
	e.changed = make(chan struct{})
}

// failedLocked records a failure. A still-valid certificate is kept and served; the
// retry comes after the backoff, or at expiry if that is sooner.
func (m *Manager) failedLocked(e *entry, err error, now time.Time) {
	e.err = err
	e.failures++
	wait := backoff(m.opts.InitialBackoff, m.opts.MaxBackoff, e.failures)
	if e.cert != nil && e.cert.ValidAt(now) {
		wait = min(wait, e.cert.NotAfter().Sub(now))
		m.log.Warn("certificate renewal failed; retaining existing valid certificate",
			"identity", e.id.String(), "expires", e.cert.NotAfter().UTC().Format(time.RFC3339),
			"retry_in", wait.String(), "error", err)
	} else {
		m.log.Error("certificate fetch failed", "identity", e.id.String(), "retry_in", wait.String(), "error", err)
	}
	m.scheduleLocked(e, wait)
}

func (m *Manager) scheduleLocked(e *entry, after time.Duration) {
	if e.timer != nil {
		e.timer.Stop()
	}
	if m.closed {
		return
	}
	e.timer = time.AfterFunc(max(after, 0), func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.enqueueLocked(e, Background)
	})
}

func (m *Manager) wakeDispatcher() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// renewAt is half way through the validity, less up to 5% of it at random, so that the
// certificates of a node issued together are not all renewed in the same instant.
func renewAt(notBefore, notAfter time.Time) time.Time {
	life := notAfter.Sub(notBefore)
	if life <= 0 {
		return notBefore
	}
	jitter := time.Duration(rand.Int64N(int64(life/20) + 1))
	return notBefore.Add(life/2 - jitter)
}

// backoff doubles from initial per failure, up to maxWait, with ±20% jitter.
func backoff(initial, maxWait time.Duration, failures int) time.Duration {
	d := initial
	for i := 1; i < failures && d < maxWait; i++ {
		d *= 2
	}
	d = min(d, maxWait)
	jitter := 0.8 + 0.4*rand.Float64()
	return time.Duration(float64(d) * jitter)
}
