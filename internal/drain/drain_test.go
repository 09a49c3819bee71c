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
	if _, ok := d.Hold(); ok {
		t.Error("Hold accepted new work while draining")
	}
	release()
	release() // idempotent
	if n := <-done; n != 0 {
		t.Errorf("Wait = %d open, want 0", n)
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
