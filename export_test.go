package wechatpay

import (
	"context"
	"time"
)

// SetFailoverClock gives f a clock, for the tests of package
// wechatpay_test.
func SetFailoverClock(f *Failover, now func() time.Time) { f.now = now }

// SetRetryHooks gives r a clock, a sleep and a jitter, for the tests of
// package wechatpay_test.
func SetRetryHooks(r *Retry, now func() time.Time, sleep func(context.Context, time.Duration) error, jitter func(time.Duration) time.Duration) {
	r.now, r.sleep, r.jitter = now, sleep, jitter
}
