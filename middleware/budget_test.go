package middleware

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestBudgetContext(t *testing.T) {
	// Done fires at the deadline.
	c := withBudget(context.Background(), 20*time.Millisecond)
	select {
	case <-c.Done():
		if !errors.Is(c.Err(), context.DeadlineExceeded) {
			t.Errorf("Err = %v; want DeadlineExceeded", c.Err())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Done did not fire")
	}
	c.stop()

	// Err without Done sees a passed deadline.
	c = withBudget(context.Background(), time.Millisecond)
	time.Sleep(5 * time.Millisecond)
	if !errors.Is(c.Err(), context.DeadlineExceeded) {
		t.Errorf("Err after the deadline = %v; want DeadlineExceeded", c.Err())
	}
	c.stop()

	// The parent's cancellation and values come through.
	type key struct{}
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	c = withBudget(parent, time.Hour)
	if c.Value(key{}) != "v" || c.Err() != nil {
		t.Errorf("Value, Err = %v, %v; want v, nil", c.Value(key{}), c.Err())
	}
	cancel()
	<-c.Done()
	if !errors.Is(c.Err(), context.Canceled) {
		t.Errorf("Err after the parent's cancel = %v; want Canceled", c.Err())
	}
	c.stop()

	// The earlier deadline wins.
	parent, cancel = context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pd, _ := parent.Deadline()
	if d, ok := withBudget(parent, time.Hour).Deadline(); !ok || !d.Equal(pd) {
		t.Errorf("Deadline = %s, %t; want the parent's %s", d, ok, pd)
	}
	if d, _ := withBudget(parent, time.Second).Deadline(); !d.Before(pd) {
		t.Errorf("Deadline = %s; want the budget's, before %s", d, pd)
	}

	// Asked for after stop, it is done.
	c = withBudget(context.Background(), time.Hour)
	c.stop()
	select {
	case <-c.Done():
	default:
		t.Error("Done after stop is not closed")
	}
}
