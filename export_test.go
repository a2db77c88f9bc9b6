package wechatpay

import (
	"context"
	"time"
)

// SetFailoverClock gives f a clock, for the tests of package
// wechatpay_test.
func SetFailoverClock(f *Failover, now func() time.Time) { f.now = now }

// SetStoreClock gives s a clock: wall time from now (for validity), and
// monotonic time from mono (for intervals), for the tests of package
// wechatpay_test.
func SetStoreClock(s *Store, now func() time.Time, mono func() time.Duration) {
	s.now, s.mono = now, mono
}

// SetRetryHooks gives r a clock, a sleep and a jitter, for the tests of
// package wechatpay_test.
func SetRetryHooks(r *Retry, now func() time.Time, sleep func(context.Context, time.Duration) error, jitter func(time.Duration) time.Duration) {
	r.now, r.sleep, r.jitter = now, sleep, jitter
}
