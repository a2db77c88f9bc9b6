package wechatpay

import "time"

// SetFailoverClock gives f a clock, for the tests of package
// wechatpay_test.
func SetFailoverClock(f *Failover, now func() time.Time) { f.now = now }
