package proxy

import (
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// The watchdog's decisions on a synctest bubble's fake clock, with the connection's
// activity scripted (in production it is the kernel's, TCP_INFO, and limits_test.go
// checks it end to end over real sockets): each step advances the clock, maybe moves
// bytes or half-closes, and says whether the connection must be aborted by then.
func TestWatchdogOnTheClock(t *testing.T) {
	type step struct {
		after   time.Duration
		traffic bool // bytes moved at this moment
		half    bool // one direction ends at this moment
		aborted bool // aborted by now
	}
	tests := []struct {
		name   string
		limits Timeouts
		steps  []step
		why    error
	}{
		{"idle past CONNECTION_IDLE_TIMEOUT", Timeouts{Idle: time.Minute},
			[]step{{after: 59 * time.Second}, {after: time.Second, aborted: true}}, errIdle},
		{"traffic postpones the idle timeout", Timeouts{Idle: time.Minute},
			[]step{{after: 50 * time.Second, traffic: true}, {after: 50 * time.Second}, {after: 10 * time.Second, aborted: true}}, errIdle},
		{"after one side's FIN, HALF_CLOSED_TIMEOUT (shorter) applies", Timeouts{Idle: time.Hour, HalfClosed: time.Minute},
			[]step{{after: 10 * time.Second, half: true}, {after: 59 * time.Second}, {after: 11 * time.Second, aborted: true}}, errHalfClosedIdle},
		{"half-closed without an idle timeout", Timeouts{HalfClosed: 10 * time.Minute},
			[]step{{after: time.Hour}, {after: 0, half: true}, {after: 10*time.Minute - time.Second}, {after: time.Second, aborted: true}}, errHalfClosedIdle},
		{"half-closed, the shorter idle timeout rules; the reason says half-closed", Timeouts{Idle: time.Minute, HalfClosed: time.Hour},
			[]step{{after: 0, half: true}, {after: time.Minute - time.Second}, {after: time.Second, aborted: true}}, errHalfClosedIdle},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ztest.NoLeaks(t)
			synctest.Test(t, func(t *testing.T) {
				var last atomic.Int64 // the clock at the last byte moved, in ns
				last.Store(time.Now().UnixNano())
				var aborts atomic.Int32
				w := newWatchdog(tt.limits, func() { aborts.Add(1) },
					func() time.Duration { return time.Since(time.Unix(0, last.Load())) })
				for i, s := range tt.steps {
					time.Sleep(s.after)
					synctest.Wait()
					if s.traffic {
						last.Store(time.Now().UnixNano())
					}
					if s.half {
						w.halfClosed()
					}
					if got := aborts.Load() == 1; got != s.aborted {
						t.Fatalf("step %d (+%s): aborted %v, want %v", i, s.after, got, s.aborted)
					}
				}
				if why := w.stop(); why != tt.why {
					t.Errorf("stop says %v, want %v", why, tt.why)
				}
			})
		})
	}
}
