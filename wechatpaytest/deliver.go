package wechatpaytest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// retrySchedule is WeChat Pay's schedule of callback retries after a
// failed delivery (docs/protocol.md §13, from WeChat Pay's payment notification
// page): 24 h 4 m in all.
var retrySchedule = []time.Duration{
	15 * time.Second, 15 * time.Second, 30 * time.Second, 3 * time.Minute,
	10 * time.Minute, 20 * time.Minute, 30 * time.Minute, 30 * time.Minute,
	30 * time.Minute, 60 * time.Minute, 3 * time.Hour, 3 * time.Hour,
	3 * time.Hour, 6 * time.Hour, 6 * time.Hour,
}

// answerTimeout is how long WeChat Pay waits for the merchant's answer to
// a callback (docs/protocol.md §6).
const answerTimeout = 5 * time.Second

// RetrySchedule returns WeChat Pay's intervals between callback
// deliveries: after a failed delivery it retries after 15 s, then 15 s,
// 30 s, 3 m, 10 m, 20 m, 30 m, 30 m, 30 m, 60 m, 3 h, 3 h, 3 h, 6 h and 6 h
// (24 h 4 m in all), then gives up. Tests compress it, for example by
// dividing each interval by 10 000, and pass it to WithCallbackSchedule.
func RetrySchedule() []time.Duration { return slices.Clone(retrySchedule) }

// WithCallbackSchedule sets how the server delivers callback
// notifications: it waits at most timeout for the merchant's answer (5 s
// by default, as WeChat Pay) and retries after the intervals of retries
// (RetrySchedule by default). An empty retries means no retry.
func WithCallbackSchedule(timeout time.Duration, retries ...time.Duration) Option {
	return func(o *options) {
		o.answerTimeout = timeout
		o.retries = slices.Clone(retries)
		o.retriesSet = true
	}
}

// WithDuplicateCallbacks makes the server send the first delivery of every
// callback notification twice at the same time, on two connections, with
// the same notification id, as WeChat Pay sometimes does: the merchant's
// handler must be idempotent and lock the order.
func WithDuplicateCallbacks() Option { return func(o *options) { o.duplicate = true } }

// OnDelivery makes the server call f after every callback delivery
// attempt, from the goroutine that made it; f must not block for long.
// The command "wechatpay sandbox" prints them with it.
func OnDelivery(f func(Delivery)) Option { return func(o *options) { o.onDelivery = f } }

// Delivery is one attempt to deliver a callback notification, and the
// merchant's answer.
type Delivery struct {
	// ID is the notification id; every attempt of one notification has
	// the same ID.
	ID          string
	EventType   string // TRANSACTION.SUCCESS, REFUND.SUCCESS, ...
	MerchantID  string // whose keys signed and encrypted it
	OutTradeNo  string
	OutRefundNo string // REFUND.* only
	URL         string
	// Attempt is 1 for the first delivery, 2 for the first retry, and so
	// on. A duplicate (WithDuplicateCallbacks) has the attempt number of
	// the delivery it copies, and Duplicate set.
	Attempt   int
	Duplicate bool
	Start     time.Time
	Duration  time.Duration
	// Status is the merchant's HTTP status, 0 if it did not answer.
	Status int
	// Body is the start (1 KiB at most) of the merchant's answer.
	Body string
	// Err says why there was no answer (connection refused, timeout).
	Err string
	// OK reports whether WeChat Pay would count the answer as received:
	// status 200 or 204 within the answer timeout (docs/protocol.md §13).
	OK bool
}

// String describes d in one line.
func (d Delivery) String() string {
	what := d.OutTradeNo
	if d.OutRefundNo != "" {
		what += " refund " + d.OutRefundNo
	}
	dup := ""
	if d.Duplicate {
		dup = " (parallel duplicate)"
	}
	answer := fmt.Sprintf("answered %d", d.Status)
	if d.Status == 0 {
		answer = "no answer: " + d.Err
	}
	verdict := "failed, will retry on schedule"
	if d.OK {
		verdict = "delivered"
	}
	return fmt.Sprintf("%s %s for %s → %s attempt %d%s: %s in %s, %s",
		d.Start.Format("15:04:05.000"), d.EventType, what, d.URL, d.Attempt, dup, answer, d.Duration.Round(time.Millisecond), verdict)
}

// Deliveries returns every callback delivery attempt the server made, in
// the order they ended.
func (s *Server) Deliveries() []Delivery {
	s.sim.mu.Lock()
	defer s.sim.mu.Unlock()
	return slices.Clone(s.sim.log)
}

// maxLog bounds the delivery log.
const maxLog = 10000

// notice is a callback notification to deliver.
type notice struct {
	id, eventType, merchant string
	outTradeNo, outRefundNo string
	url                     string
	resource                map[string]any
}

// owned runs f on a goroutine the server owns: Close cancels ctx and waits
// for f to return. After Close, owned does nothing.
func (s *Server) owned(f func(ctx context.Context)) {
	s.life.Lock()
	defer s.life.Unlock()
	if s.life.stopped {
		return
	}
	s.life.wg.Add(1)
	go func() {
		defer s.life.wg.Done()
		f(s.life.ctx)
	}()
}

// lifecycle owns the server's background goroutines.
type lifecycle struct {
	sync.Mutex
	stopped bool
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// stop cancels the goroutines and waits for them.
func (l *lifecycle) stop() {
	l.Lock()
	l.stopped = true
	l.Unlock()
	l.cancel()
	l.wg.Wait()
}

// notify delivers n on WeChat Pay's schedule, from a goroutine the server
// owns.
func (s *Server) notify(n notice) {
	n.id = newNotificationID()
	s.owned(func(ctx context.Context) { s.deliver(ctx, n) })
}

func (s *Server) deliver(ctx context.Context, n notice) {
	for attempt := 1; ; attempt++ {
		ok := false
		if attempt == 1 && s.opts.duplicate {
			var wg sync.WaitGroup
			var dupOK bool
			wg.Add(1)
			go func() {
				defer wg.Done()
				dupOK = s.attempt(ctx, n, attempt, true)
			}()
			ok = s.attempt(ctx, n, attempt, false)
			wg.Wait()
			ok = ok || dupOK
		} else {
			ok = s.attempt(ctx, n, attempt, false)
		}
		if ok || attempt > len(s.opts.retries) {
			return
		}
		t := time.NewTimer(s.opts.retries[attempt-1])
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// attempt sends n once and records the outcome.
func (s *Server) attempt(ctx context.Context, n notice, attempt int, duplicate bool) bool {
	d := Delivery{
		ID: n.id, EventType: n.eventType, MerchantID: n.merchant, OutTradeNo: n.outTradeNo, OutRefundNo: n.outRefundNo,
		URL: n.url, Attempt: attempt, Duplicate: duplicate, Start: time.Now(),
	}
	actx, cancel := context.WithTimeout(ctx, s.opts.answerTimeout)
	defer cancel()
	req, err := s.notificationRequest(actx, n.url, n.eventType, n.resource, &notifyOptions{merchant: n.merchant, id: n.id})
	if err == nil {
		var resp *http.Response
		if resp, err = s.cbClient.Do(req); err == nil {
			var body []byte
			body, err = io.ReadAll(io.LimitReader(resp.Body, maxNotifyAnswer))
			resp.Body.Close()
			d.Status, d.Body = resp.StatusCode, string(body)
			if err != nil { // the answer was cut short, or came too late
				d.Status = 0
			}
		}
	}
	d.Duration = time.Since(d.Start)
	if err != nil {
		d.Err = err.Error()
		if actx.Err() == context.DeadlineExceeded {
			d.Err = fmt.Sprintf("no answer within %s", s.opts.answerTimeout)
		}
	}
	d.OK = d.Status == http.StatusOK || d.Status == http.StatusNoContent
	if ctx.Err() != nil && !d.OK {
		return false // the server is closing: not an attempt worth recording
	}
	s.sim.mu.Lock()
	if len(s.sim.log) >= maxLog {
		s.sim.log = slices.Delete(s.sim.log, 0, len(s.sim.log)-maxLog+1)
	}
	s.sim.log = append(s.sim.log, d)
	s.sim.mu.Unlock()
	if s.opts.onDelivery != nil {
		s.opts.onDelivery(d)
	}
	return d.OK
}
