package wechatpay

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// The kinds of Event (its Kind). A failure carries its error in
// Event.Err. They are plain strings, ready to be metric labels.
const (
	// EventCertificateDownload: a download of a merchant's platform
	// certificates finished, successfully (Err nil, Serials set) or not.
	EventCertificateDownload = "certificate_download"
	// EventRefreshFailed: a background refresh ahead of expiry failed;
	// the keys already held keep serving.
	EventRefreshFailed = "refresh_failed"
	// EventBadSignature, EventClockSkew, EventSignatureProbe and
	// EventUnknownSerial: a response or callback failed verification for
	// that reason. EventVerifyFailed is any other verification failure
	// (missing headers, unsupported type, expired key, download error).
	EventBadSignature   = "verify_bad_signature"
	EventClockSkew      = "verify_clock_skew"
	EventSignatureProbe = "verify_signature_probe"
	EventUnknownSerial  = "verify_unknown_serial"
	EventVerifyFailed   = "verify_failed"
	// EventRateLimited: an unknown serial was not looked up because the
	// merchant's last download was less than MinRefreshInterval ago.
	EventRateLimited = "rate_limited"
	// EventFailover: a Failover sent a request to Host, the other host,
	// because the first failed (Err says which and how). EventFailback:
	// the main host (Host) answered again after a Failover had stayed on
	// the backup, and requests go back to it.
	EventFailover = "failover"
	EventFailback = "failback"
	// EventCallbackRefused: the callback middleware refused a request
	// (Status holds its answer, Err why).
	EventCallbackRefused = "callback_refused"
	// EventsDropped: an Async hook dropped events because it was slow;
	// Err says how many. It is delivered before the next event.
	EventsDropped = "events_dropped"
	// EventRetryAttempt: a Retry made an attempt (Attempt, from 1), which
	// got an answer (Status) or failed (Err) after Duration.
	EventRetryAttempt = "retry_attempt"
	// EventStoreTooSmall: the Store evicted a merchant's set less than
	// RefreshInterval after obtaining it (MerchantID): raise
	// StoreOptions.Size.
	EventStoreTooSmall = "store_too_small"
)

// An Event is something an operator may want to count or log: a
// certificate download, a verification failure, a failover, a refused
// callback. Every field is safe to log: an Event never carries a key,
// an Authorization header or a decrypted payload. Fields that do not
// apply to a Kind are zero.
type Event struct {
	Kind       string // one of the Event... constants
	Time       time.Time
	MerchantID string
	Serial     string        // the serial or public-key ID concerned
	Serials    []string      // EventCertificateDownload: the serials downloaded
	Host       string        // the WeChat Pay host concerned
	RequestID  string        // WeChat Pay's Request-ID, if any
	Status     int           // an HTTP status: the answer of a refused callback
	Duration   time.Duration // how long the download or request took
	Attempt    int           // EventRetryAttempt: the attempt's number, from 1
	Err        error         // the failure, or nil
}

// An EventHook receives events. It is called synchronously, on the
// goroutine where the event happened (inside verification, downloads,
// failover and callback handling), in the order events happen, and must
// therefore return quickly and be safe for concurrent use; the context is
// that of the operation (its values, such as trace IDs, are there). A
// hook that may block, one that exports over the network for example,
// should be wrapped with Async. Events must not be modified; Serials is
// shared.
type EventHook func(ctx context.Context, ev Event)

// Async returns a hook that hands events to h on a goroutine of its own,
// in order, without ever blocking the caller: at most buffer events wait
// (buffer < 1 means 64); past that, events are dropped, and an
// EventsDropped event saying how many precedes the next one delivered.
// The goroutine runs only while events wait, so nothing outlives the work.
func (h EventHook) Async(buffer int) EventHook {
	if h == nil {
		return nil
	}
	if buffer < 1 {
		buffer = 64
	}
	q := &eventQueue{hook: h, max: buffer}
	return q.add
}

type queuedEvent struct {
	ctx context.Context
	ev  Event
}

type eventQueue struct {
	hook EventHook
	max  int

	mu      sync.Mutex
	q       []queuedEvent
	running bool
	dropped int
}

func (q *eventQueue) add(ctx context.Context, ev Event) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.q) >= q.max {
		q.dropped++
		return
	}
	ctx = context.WithoutCancel(ctx)
	if q.dropped > 0 {
		d := Event{Kind: EventsDropped, Time: ev.Time, Err: droppedError(q.dropped)}
		q.q = append(q.q, queuedEvent{ctx, d})
		q.dropped = 0
	}
	q.q = append(q.q, queuedEvent{ctx, ev})
	if !q.running {
		q.running = true
		go q.run()
	}
}

func (q *eventQueue) run() {
	for {
		q.mu.Lock()
		if len(q.q) == 0 {
			q.running = false
			q.q = nil
			q.mu.Unlock()
			return
		}
		e := q.q[0]
		q.q[0] = queuedEvent{}
		q.q = q.q[1:]
		q.mu.Unlock()
		q.hook(e.ctx, e.ev)
	}
}

// droppedError is the Err of an EventsDropped event: how many.
type droppedError int

func (n droppedError) Error() string {
	return "wechatpay: " + itoa(int(n)) + " events dropped: the event hook is too slow"
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// SlogEvents returns a hook that logs each event with l: failures (an
// event with Err) at level Warn, the rest at Info, with the message
// "wechatpay: " + kind and one attribute per non-zero field.
func SlogEvents(l *slog.Logger) EventHook {
	if l == nil {
		return nil
	}
	return func(ctx context.Context, ev Event) {
		level := slog.LevelInfo
		if ev.Err != nil {
			level = slog.LevelWarn
		}
		if !l.Enabled(ctx, level) {
			return
		}
		attrs := make([]slog.Attr, 0, 10)
		add := func(k, v string) {
			if v != "" {
				attrs = append(attrs, slog.String(k, v))
			}
		}
		add("merchant", ev.MerchantID)
		add("serial", ev.Serial)
		if len(ev.Serials) > 0 {
			attrs = append(attrs, slog.Any("serials", ev.Serials))
		}
		add("host", ev.Host)
		add("request_id", ev.RequestID)
		if ev.Status != 0 {
			attrs = append(attrs, slog.Int("status", ev.Status))
		}
		if ev.Attempt != 0 {
			attrs = append(attrs, slog.Int("attempt", ev.Attempt))
		}
		if ev.Duration != 0 {
			attrs = append(attrs, slog.Duration("duration", ev.Duration))
		}
		if ev.Err != nil {
			attrs = append(attrs, slog.String("error", ev.Err.Error()))
		}
		r := slog.NewRecord(ev.Time, level, "wechatpay: "+ev.Kind, 0)
		if ev.Time.IsZero() {
			r.Time = time.Now()
		}
		r.AddAttrs(attrs...)
		_ = l.Handler().Handle(ctx, r)
	}
}

// emit gives ev to h, if set, stamping its time. With a nil hook it
// costs a comparison: build costly fields (Serials) only when h != nil.
func emit(ctx context.Context, h EventHook, ev Event) {
	if h != nil {
		h.deliver(ctx, &ev)
	}
}

func (h EventHook) deliver(ctx context.Context, e *Event) {
	ev := *e
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	h(ctx, ev)
}

// verifyEventKind classifies a verification error into its event kind.
func verifyEventKind(err error) string {
	switch {
	case errors.Is(err, ErrSignatureProbe):
		return EventSignatureProbe
	case errors.Is(err, ErrClockSkew):
		return EventClockSkew
	case errors.Is(err, ErrUnknownSerial):
		return EventUnknownSerial
	case errors.Is(err, ErrBadSignature):
		return EventBadSignature
	default:
		return EventVerifyFailed
	}
}
