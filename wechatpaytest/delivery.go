package wechatpaytest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Callback delivery: each notification is posted to the merchant from a
// goroutine the server owns, retried on WeChat Pay's schedule until the
// merchant answers 200 or 204 in time, and every attempt is recorded.

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
	// Warning says what WeChat Pay would not accept although the sandbox
	// does, such as an http notify_url (WeChat Pay calls https only).
	Warning string
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
	warning := ""
	if d.Warning != "" {
		warning = " (warning: " + d.Warning + ")"
	}
	return fmt.Sprintf("%s %s for %s → %s attempt %d%s: %s in %s, %s%s",
		d.Start.Format("15:04:05.000"), d.EventType, what, d.URL, d.Attempt, dup, answer, d.Duration.Round(time.Millisecond), verdict, warning)
}

// warnHTTP is Delivery.Warning for an http notify_url: WeChat Pay's
// prepay pages require https on a public domain, http only over a leased
// line or a private callback domain (pay.weixin.qq.com/doc/v3/merchant/
// 4012525095).
const warnHTTP = "notify_url is http; WeChat Pay requires https on a public domain"

// maxLog bounds the delivery log.
const maxLog = 10000

// notice is a callback notification to deliver. Product parts fill
// eventType, merchant, url, resource (the payload before encryption) and
// the business numbers the Delivery record shows.
type notice struct {
	id, eventType, merchant string
	outTradeNo, outRefundNo string
	url                     string
	resource                map[string]any
}

// delivery posts notifications and keeps the log of attempts. Its
// settings are fixed by NewServer.
type delivery struct {
	clock      *simClock
	life       *lifecycle
	notes      *notifier
	client     *http.Client
	transport  *http.Transport
	timeout    time.Duration   // for the merchant's answer
	retries    []time.Duration // intervals after failed attempts
	duplicate  bool            // WithDuplicateCallbacks
	onDelivery func(Delivery)  // OnDelivery

	mu  sync.Mutex
	log []Delivery // guarded by mu: every attempt, in the order they ended; at most maxLog
}

func newDelivery(o *options, clock *simClock, life *lifecycle, notes *notifier) *delivery {
	t := http.DefaultTransport.(*http.Transport).Clone()
	return &delivery{
		clock: clock, life: life, notes: notes, transport: t,
		client: &http.Client{
			Transport:     t,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		timeout: o.answerTimeout, retries: o.retries, duplicate: o.duplicate, onDelivery: o.onDelivery,
	}
}

// send delivers n on WeChat Pay's schedule, from a goroutine the server
// owns, under a new notification id.
func (d *delivery) send(n notice) {
	n.id = newNotificationID()
	d.life.goOwned(func(ctx context.Context) { d.deliver(ctx, n) })
}

// deliveries returns the log, filtered by keep if it is not nil.
func (d *delivery) deliveries(keep func(*Delivery) bool) []Delivery {
	d.mu.Lock()
	defer d.mu.Unlock()
	if keep == nil {
		return slices.Clone(d.log)
	}
	var out []Delivery
	for i := range d.log {
		if keep(&d.log[i]) {
			out = append(out, d.log[i])
		}
	}
	return out
}

// close closes the idle connections of the callback client.
func (d *delivery) close() { d.transport.CloseIdleConnections() }

func (d *delivery) deliver(ctx context.Context, n notice) {
	for attempt := 1; ; attempt++ {
		ok := false
		if attempt == 1 && d.duplicate {
			var wg sync.WaitGroup
			var dupOK bool
			wg.Add(1)
			go func() {
				defer wg.Done()
				dupOK = d.attempt(ctx, n, attempt, true)
			}()
			ok = d.attempt(ctx, n, attempt, false)
			wg.Wait()
			ok = ok || dupOK
		} else {
			ok = d.attempt(ctx, n, attempt, false)
		}
		if ok || attempt > len(d.retries) {
			return
		}
		if !d.clock.sleep(ctx, d.retries[attempt-1], nil) {
			return
		}
	}
}

// errNoAnswer ends an attempt the merchant did not answer in time.
var errNoAnswer = errors.New("no answer in time")

// attempt sends n once and records the outcome.
func (d *delivery) attempt(ctx context.Context, n notice, attempt int, duplicate bool) bool {
	rec := Delivery{
		ID: n.id, EventType: n.eventType, MerchantID: n.merchant, OutTradeNo: n.outTradeNo, OutRefundNo: n.outRefundNo,
		URL: n.url, Attempt: attempt, Duplicate: duplicate, Start: d.clock.elapsed(),
	}
	if strings.HasPrefix(strings.ToLower(n.url), "http://") {
		rec.Warning = warnHTTP
	}
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := d.clock.base.AfterFunc(d.timeout, func() { cancel(errNoAnswer) })
	defer stop()
	req, err := d.notes.request(actx, n.url, n.eventType, n.resource, &notifyOptions{merchant: n.merchant, id: n.id})
	if err == nil {
		var resp *http.Response
		if resp, err = d.client.Do(req); err == nil {
			var body []byte
			body, err = io.ReadAll(io.LimitReader(resp.Body, maxNotifyAnswer))
			resp.Body.Close()
			rec.Status, rec.Body = resp.StatusCode, string(body)
			if err != nil { // the answer was cut short, or came too late
				rec.Status = 0
			}
		}
	}
	rec.Duration = d.clock.elapsed().Sub(rec.Start)
	if err != nil {
		rec.Err = err.Error()
		if context.Cause(actx) == errNoAnswer {
			rec.Err = fmt.Sprintf("no answer within %s", d.timeout)
		}
	}
	rec.OK = rec.Status == http.StatusOK || rec.Status == http.StatusNoContent
	if ctx.Err() != nil && !rec.OK {
		return false // the server is closing: not an attempt worth recording
	}
	d.record(rec)
	return rec.OK
}

// record adds an attempt to the log and reports it to OnDelivery.
func (d *delivery) record(rec Delivery) {
	d.mu.Lock()
	if len(d.log) >= maxLog {
		d.log = slices.Delete(d.log, 0, len(d.log)-maxLog+1)
	}
	d.log = append(d.log, rec)
	d.mu.Unlock()
	if d.onDelivery != nil {
		d.onDelivery(rec)
	}
}

// Deliveries returns every callback delivery attempt the server made, in
// the order they ended.
func (s *Server) Deliveries() []Delivery { return s.delivery.deliveries(nil) }
