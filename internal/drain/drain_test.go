package drain_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ztunnel-go/ztunnel/internal/drain"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestWaitReturnsWhenHoldersRelease(t *testing.T) {
	ztest.NoLeaks(t)
	d := drain.New()
	release, ok := d.Hold()
	if !ok {
		t.Fatal("Hold refused before Start")
	}
	done := make(chan int)
	go func() { done <- d.Wait(context.Background()) }()
	<-d.Draining()
	late, ok := d.Hold() // a connection accepted while the listeners hand over
	if !ok {
		t.Fatal("Hold refused work begun while draining, before the drain finished")
	}
	release()
	release() // idempotent
	select {
	case n := <-done:
		t.Fatalf("Wait returned %d with the late holder still open", n)
	case <-time.After(20 * time.Millisecond):
	}
	late()
	if n := <-done; n != 0 {
		t.Errorf("Wait = %d open, want 0", n)
	}
	if _, ok := d.Hold(); ok {
		t.Error("Hold accepted new work after the drain finished")
	}
}

func TestWaitGivesUpAtDeadline(t *testing.T) {
	ztest.NoLeaks(t)
	d := drain.New()
	d.Hold()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if n := d.Wait(ctx); n != 1 {
		t.Errorf("Wait = %d open, want 1", n)
	}
}

func TestWaitWithNothingHeld(t *testing.T) {
	ztest.NoLeaks(t)
	d := drain.New()
	d.Start()
	d.Start()
	if n := d.Wait(context.Background()); n != 0 {
		t.Errorf("Wait = %d", n)
	}
}
