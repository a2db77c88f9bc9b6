package wechatpay

import "time"

// SetFailoverClock gives f a clock, for the tests of package
// wechatpay_test.
func SetFailoverClock(f *Failover, now func() time.Time) { f.now = now }

// SetStoreClock gives s a clock: wall time from now (for validity), and
// monotonic time from mono (for intervals), for the tests of package
// wechatpay_test.
func SetStoreClock(s *Store, now func() time.Time, mono func() time.Duration) {
	s.now, s.mono = now, mono
}
