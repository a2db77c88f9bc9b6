package wechatpaytest

import (
	"net/http"
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

// requestClock is the time request timestamps are checked against: the
// sandbox clock with WithClockOffset, the real time otherwise.
func (s *Server) requestClock() time.Time {
	if s.opts.wholeClock {
		return s.now()
	}
	return time.Now()
}

// setDate sets the Date header of an answer from the sandbox clock when
// WithClockOffset is in effect; net/http keeps a Date that is set.
func (s *Server) setDate(w http.ResponseWriter) {
	if s.opts.wholeClock {
		w.Header().Set("Date", s.now().UTC().Format(http.TimeFormat))
	}
}
