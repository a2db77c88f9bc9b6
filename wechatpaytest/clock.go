package wechatpaytest

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"
)

// WithClockOffset sets the sandbox's clock to the real time plus d, as
// WeChat Pay's clock looks to a merchant whose own clock is off by -d:
// the Date header of every answer, the Wechatpay-Timestamp of signed
// answers and notifications, and the check of request timestamps (more
// than 5 minutes away is SIGN_ERROR, as WeChat Pay answers) all use it.
// Unlike SetClockOffset, which skews only what the sandbox sends, this
// skews the sandbox as a whole, for tests of clock diagnosis.
func WithClockOffset(d time.Duration) Option {
	return func(o *options) { o.clockOffset, o.wholeClock = d, true }
}

// withClock makes the server read the time from c and set its timers
// (callback answer timeouts and retries, refund delays, certificate
// delays) on it, so that a test can drive WeChat Pay's 24-hour retry
// schedule by events instead of by waiting. Request timestamps are
// still checked against the real time unless WithClockOffset is given.
func withClock(c clock) Option { return func(o *options) { o.clock = c } }

// clock is where the simulator reads the time and sets its timers.
type clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine after d; stop cancels the
	// call and reports whether it did.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// realClock is the machine's clock.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }

// simClock is the sandbox's clock: a base clock (the real one unless a
// test injects another) plus an offset. Its settings are fixed by
// NewServer, except the offset.
type simClock struct {
	base  clock
	whole bool // WithClockOffset: request timestamps are checked against the offset clock
	real  bool // base is the machine's clock: request timestamps use time.Now

	offset atomic.Int64 // time.Duration; SetClockOffset
}

func newSimClock(o *options) *simClock {
	c := &simClock{base: o.clock, whole: o.wholeClock}
	if c.base == nil {
		c.base, c.real = realClock{}, true
	}
	c.offset.Store(int64(o.clockOffset))
	return c
}

// now is the sandbox clock, used for response timestamps and the times
// of orders and refunds.
func (c *simClock) now() time.Time {
	return c.base.Now().Add(time.Duration(c.offset.Load()))
}

// elapsed is the base clock, without offset: the times of Delivery.
func (c *simClock) elapsed() time.Time { return c.base.Now() }

// requestTime is the time request timestamps are checked against: the
// sandbox clock with WithClockOffset, the real time otherwise.
func (c *simClock) requestTime() time.Time {
	if c.whole {
		return c.now()
	}
	return time.Now()
}

// setDate sets the Date header of an answer from the sandbox clock when
// WithClockOffset is in effect; net/http keeps a Date that is set.
func (c *simClock) setDate(w http.ResponseWriter) {
	if c.whole {
		w.Header().Set("Date", c.now().UTC().Format(http.TimeFormat))
	}
}

// sleep returns true after d on the base clock, or false as soon as ctx
// or stop is done. A negative d waits only for the latter.
func (c *simClock) sleep(ctx context.Context, d time.Duration, stop <-chan struct{}) bool {
	var elapsed chan struct{}
	if d >= 0 {
		elapsed = make(chan struct{})
		cancel := c.base.AfterFunc(d, func() { close(elapsed) })
		defer cancel()
	}
	select {
	case <-elapsed:
		return true
	case <-ctx.Done():
		return false
	case <-stop:
		return false
	}
}

// SetClockOffset sets the sandbox clock to the real time plus d. Responses
// are signed with timestamps of the sandbox clock (their signatures stay
// valid), so an offset beyond 5 minutes makes clients see skewed
// responses. Request timestamps are still checked against the real time,
// so that a skewed response can be observed at all.
func (s *Server) SetClockOffset(d time.Duration) { s.clock.offset.Store(int64(d)) }
