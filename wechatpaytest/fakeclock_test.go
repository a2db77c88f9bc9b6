package wechatpaytest

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock that moves only when the test advances it, so that
// tests of WeChat Pay's 24-hour retry schedule wait on events (a request
// arrived, a timer was set) instead of on the machine's time.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*fakeTimer  // pending, in the order they were set
	changed chan struct{} // closed and replaced when a timer is set
}

type fakeTimer struct {
	at time.Time
	f  func()
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC), changed: make(chan struct{})}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	close(c.changed)
	c.changed = make(chan struct{})
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		i := slices.Index(c.timers, t)
		if i < 0 {
			return false
		}
		c.timers = slices.Delete(c.timers, i, i+1)
		return true
	}
}

// advance moves the clock by d and fires the timers then due, each on
// its own goroutine as time.AfterFunc does.
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*fakeTimer
	c.timers = slices.DeleteFunc(c.timers, func(t *fakeTimer) bool {
		if !t.at.After(c.now) {
			due = append(due, t)
			return true
		}
		return false
	})
	c.mu.Unlock()
	for _, t := range due {
		go t.f()
	}
}

// waitTimer blocks until a timer is pending that is due d from now.
func (c *fakeClock) waitTimer(t *testing.T, d time.Duration) {
	t.Helper()
	for {
		c.mu.Lock()
		at := c.now.Add(d)
		found := slices.ContainsFunc(c.timers, func(ft *fakeTimer) bool { return ft.at.Equal(at) })
		changed := c.changed
		c.mu.Unlock()
		if found {
			return
		}
		<-changed
	}
}

// pending returns how many timers are set.
func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}
