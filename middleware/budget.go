package middleware

import (
	"context"
	"sync"
	"time"
)

// budgetContext is a child of a request's context that is done at a
// deadline, as with context.WithDeadline, except that it makes its timer
// only when first asked for Done or Err. A key lookup the store answers
// from its cache never asks, so the common case costs no timer; a lookup
// that waits for a certificate download is bounded as usual.
type budgetContext struct {
	context.Context // the parent, which answers Value
	deadline        time.Time

	mu      sync.Mutex
	child   context.Context // context.WithDeadline(parent, deadline), made on demand
	cancel  context.CancelFunc
	stopped bool
}

func withBudget(parent context.Context, d time.Duration) *budgetContext {
	return &budgetContext{Context: parent, deadline: time.Now().Add(d)}
}

func (c *budgetContext) start() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.child == nil {
		c.child, c.cancel = context.WithDeadline(c.Context, c.deadline)
		if c.stopped {
			c.cancel() // asked for after stop: done already
		}
	}
	return c.child
}

// stop releases the timer, if one was made, as a CancelFunc does.
func (c *budgetContext) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
	if c.cancel != nil {
		c.cancel()
	}
}

func (c *budgetContext) Deadline() (time.Time, bool) {
	d := c.deadline
	if pd, ok := c.Context.Deadline(); ok && pd.Before(d) {
		d = pd
	}
	return d, true
}

func (c *budgetContext) Done() <-chan struct{} { return c.start().Done() }

func (c *budgetContext) Err() error { return c.start().Err() }
