package middleware

import (
	"bytes"
	"context"
	"crypto/cipher"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/internal/wire"
)

// Defaults of Config.
const (
	// DefaultMaxBodySize bounds a notification body; real ones are a few
	// KiB.
	DefaultMaxBodySize = 1 << 20
	// DefaultBudget leaves WeChat Pay's 5 seconds (docs/protocol.md §6) room for
	// the handler and the network.
	DefaultBudget = 3 * time.Second
	// DefaultBodyTimeout bounds how long a notification body may take to
	// arrive once the middleware starts reading it. WeChat Pay sends a few
	// KiB at once and waits 5 s for the whole answer (docs/protocol.md
	// §6), so a body still arriving after 5 s is not WeChat Pay's.
	DefaultBodyTimeout = 5 * time.Second
)

// initialBodyBuffer is the most the middleware allocates for a body
// before any of it has arrived: less than the buffers net/http itself
// holds per connection. Beyond it, the buffer grows only as bytes arrive.
const initialBodyBuffer = 2048

// aeadCacheSize bounds the ciphers kept for merchants of APIv3Keys.
const aeadCacheSize = 1024

// Errors the middleware reports to Config.ErrorHandler, wrapped in an
// *Error, besides those of package wechatpay (verification, decryption).
var (
	ErrMethod          = errors.New("wechatpay/middleware: notification must be a POST")
	ErrUnknownMerchant = errors.New("wechatpay/middleware: notification for an unknown merchant")
	ErrMalformed       = errors.New("wechatpay/middleware: malformed notification")
	// ErrBodyTimeout: the body did not arrive within Config.BodyTimeout.
	ErrBodyTimeout = errors.New("wechatpay/middleware: notification body did not arrive within BodyTimeout")
	// ErrInProgress: Config.Guard says another delivery of the
	// notification is being processed; answered 503 so that WeChat Pay
	// delivers it again later.
	ErrInProgress = errors.New("wechatpay/middleware: notification is being processed by another delivery")
)

// Config configures Notifications. Keys, a merchant (MerchantID or
// MerchantIDFunc) and an APIv3 key (APIv3Key or APIv3Keys) are required;
// every other field has a documented default. Its String method does not
// print the APIv3 key.
type Config struct {
	// Keys supplies the keys that check signatures: normally the
	// *wechatpay.Store the merchant's Transport uses, with the merchant
	// registered, so that an unknown Wechatpay-Serial makes it download
	// the platform certificates and a PUB_KEY_ID_ selects a configured
	// WeChat Pay public key. t.Verifier.Keys of a Transport t made by
	// wechatpay.NewTransport is that Store, whether or not its Config
	// named one: use it to avoid wiring a Store that does not know the
	// merchant (every callback would be answered 404, and ErrorHandler
	// told the fix). Required.
	Keys wechatpay.KeySource

	// MerchantID is the merchant every notification is for. Set it or
	// MerchantIDFunc.
	MerchantID string
	// MerchantIDFunc tells which merchant a notification is for, for
	// endpoints shared by many merchants, for example
	//
	//	func(r *http.Request) (string, bool) { id := r.PathValue("mchid"); return id, id != "" }
	//
	// Its result is attacker-controlled: false, an empty ID, or an ID
	// unknown to APIv3Keys or Keys is answered 404.
	MerchantIDFunc func(r *http.Request) (merchantID string, ok bool)

	// APIv3Key decrypts the notifications of every merchant; exactly 32
	// bytes. Set it or APIv3Keys.
	APIv3Key string
	// APIv3Keys returns a merchant's APIv3 key, false for a merchant it
	// does not know (answered 404). The cipher built from a key is cached
	// and rebuilt when the key changes.
	APIv3Keys func(merchantID string) (apiv3Key string, ok bool)

	// MaxSkew is the largest accepted distance between
	// Wechatpay-Timestamp and now. Zero means 5 minutes.
	MaxSkew time.Duration
	// MaxBodySize bounds the body read into memory. Zero means
	// DefaultMaxBodySize (1 MiB).
	MaxBodySize int64
	// BodyTimeout bounds how long the body may take to arrive, from when
	// the middleware starts reading it; past it the answer is 408 and the
	// connection is closed. Zero means DefaultBodyTimeout (5 s). It is
	// enforced with http.ResponseController.SetReadDeadline; behind a
	// ResponseWriter that does not support read deadlines, the body is
	// read without this bound (the http.Server's ReadTimeout still
	// applies).
	BodyTimeout time.Duration
	// Budget bounds the signature check, including waiting for a
	// certificate download; past it the answer is 503 (the download
	// itself goes on, bounded by the Store's FetchTimeout). Zero means
	// DefaultBudget (3 s).
	Budget time.Duration

	// ErrorHandler, if set, receives each refused request and the *Error
	// saying why, before the failure answer is written; also each failure
	// of Guard (with Status 0), which does not refuse the notification. It
	// must not write to the response.
	ErrorHandler func(r *http.Request, err error)

	// Guard, if set, makes sure each notification is processed once:
	// the handler runs for the delivery that claims it; a delivery that
	// finds it processed is answered 204 without running the handler, one
	// that finds it being processed elsewhere is answered 503 (WeChat Pay
	// delivers it again later). See DuplicateGuard. Nil means every
	// verified delivery runs the handler.
	Guard DuplicateGuard

	// Events, if set, receives a wechatpay.EventCallbackRefused event for
	// each refused request, with the status answered and the reason; it
	// is called before the answer is written, so it must be quick (see
	// wechatpay.EventHook.Async). Nil means no events.
	Events wechatpay.EventHook
}

// String describes c without its APIv3 key.
func (c Config) String() string {
	key := "[unset]"
	if c.APIv3Key != "" {
		key = "[redacted]"
	}
	return fmt.Sprintf("middleware.Config{MerchantID: %q, MerchantIDFunc: %t, APIv3Key: %s, APIv3Keys: %t, MaxSkew: %s, MaxBodySize: %d, BodyTimeout: %s, Budget: %s, Guard: %t, Events: %t}",
		c.MerchantID, c.MerchantIDFunc != nil, key, c.APIv3Keys != nil, c.MaxSkew, c.MaxBodySize, c.BodyTimeout, c.Budget, c.Guard != nil, c.Events != nil)
}

// GoString is String, so that %#v does not print the key either.
func (c Config) GoString() string { return c.String() }

// An Error is a refused notification, as Config.ErrorHandler receives it.
// Its fields are safe to log.
type Error struct {
	Status     int    // the HTTP status answered
	MerchantID string // the merchant the notification was for, if known
	Err        error  // why
}

func (e *Error) Error() string {
	if e.MerchantID == "" {
		return fmt.Sprintf("wechatpay/middleware: notification answered %d: %v", e.Status, e.Err)
	}
	return fmt.Sprintf("wechatpay/middleware: notification for merchant %s answered %d: %v", e.MerchantID, e.Status, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Generic failure messages: they say what kind of failure it was and
// nothing more.
const (
	msgMethod      = "method not allowed"
	msgMerchant    = "unknown merchant"
	msgTooLarge    = "request body too large"
	msgRead        = "cannot read request body"
	msgTimeout     = "request body timeout"
	msgVerify      = "signature verification failed"
	msgUnavailable = "verification temporarily unavailable"
	msgMalformed   = "malformed notification"
	msgDecrypt     = "cannot decrypt notification"
	msgInternal    = "internal error"
	msgInProgress  = "notification is being processed"
)

// Notifications returns middleware that lets a request through to the
// next handler only if it is a WeChat Pay notification for a known
// merchant, with a valid signature and a resource that decrypts. The next
// handler finds the *Notification with NotificationFrom and can read the
// request body again; if it writes nothing, the answer is 204. Every
// other request is answered with the failure JSON (see the package
// documentation for the statuses) and never reaches it.
//
// Notifications panics if cfg is unusable: no Keys, no merchant, no APIv3
// key, an APIv3Key that is not 32 bytes, a merchant or key given both
// ways, or a negative size or duration. It never panics per request.
func Notifications(cfg Config) func(http.Handler) http.Handler {
	h := newHandler(cfg)
	return func(next http.Handler) http.Handler {
		if next == nil {
			panic("wechatpay/middleware: Notifications: nil handler")
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.serve(w, r, next)
		})
	}
}

type handler struct {
	cfg         Config
	maxBody     int64
	bodyTimeout time.Duration
	budget      time.Duration
	aead        cipher.AEAD                   // of cfg.APIv3Key, or nil
	aeads       *lru.Cache[string, aeadOfKey] // of cfg.APIv3Keys, or nil
}

type aeadOfKey struct {
	key  string
	aead cipher.AEAD
}

func newHandler(cfg Config) *handler {
	var problems []string
	if cfg.Keys == nil {
		problems = append(problems, "Keys is nil")
	}
	switch {
	case cfg.MerchantID == "" && cfg.MerchantIDFunc == nil:
		problems = append(problems, "set MerchantID or MerchantIDFunc")
	case cfg.MerchantID != "" && cfg.MerchantIDFunc != nil:
		problems = append(problems, "set only one of MerchantID and MerchantIDFunc")
	}
	h := &handler{cfg: cfg, maxBody: cfg.MaxBodySize, bodyTimeout: cfg.BodyTimeout, budget: cfg.Budget}
	switch {
	case cfg.APIv3Key == "" && cfg.APIv3Keys == nil:
		problems = append(problems, "set APIv3Key or APIv3Keys")
	case cfg.APIv3Key != "" && cfg.APIv3Keys != nil:
		problems = append(problems, "set only one of APIv3Key and APIv3Keys")
	case cfg.APIv3Key != "":
		a, err := wire.NewAEAD(cfg.APIv3Key) // its error never shows the key
		if err != nil {
			problems = append(problems, err.Error())
		}
		h.aead = a
	default:
		c, err := lru.New[string, aeadOfKey](aeadCacheSize)
		if err != nil {
			panic(err) // the size is positive
		}
		h.aeads = c
	}
	if cfg.MaxBodySize < 0 {
		problems = append(problems, "MaxBodySize is negative")
	} else if cfg.MaxBodySize == 0 {
		h.maxBody = DefaultMaxBodySize
	}
	if cfg.BodyTimeout < 0 {
		problems = append(problems, "BodyTimeout is negative")
	} else if cfg.BodyTimeout == 0 {
		h.bodyTimeout = DefaultBodyTimeout
	}
	if cfg.Budget < 0 {
		problems = append(problems, "Budget is negative")
	} else if cfg.Budget == 0 {
		h.budget = DefaultBudget
	}
	if cfg.MaxSkew < 0 {
		problems = append(problems, "MaxSkew is negative")
	}
	if len(problems) > 0 {
		panic(fmt.Sprintf("wechatpay/middleware: Notifications: %v", problems))
	}
	return h
}

func (h *handler) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.fail(w, r, http.StatusMethodNotAllowed, msgMethod, "", ErrMethod)
		return
	}
	merchantID := h.cfg.MerchantID
	if f := h.cfg.MerchantIDFunc; f != nil {
		id, ok := f(r)
		if !ok || id == "" {
			h.fail(w, r, http.StatusNotFound, msgMerchant, "", ErrUnknownMerchant)
			return
		}
		merchantID = id
	}
	aead, err := h.aeadFor(merchantID)
	if err != nil {
		status, msg := http.StatusInternalServerError, msgInternal
		if errors.Is(err, ErrUnknownMerchant) {
			status, msg = http.StatusNotFound, msgMerchant
		}
		h.fail(w, r, status, msg, merchantID, err)
		return
	}

	body, err := readBody(w, r, h.maxBody, h.bodyTimeout)
	if err != nil {
		status, msg := http.StatusBadRequest, msgRead
		switch {
		case errors.Is(err, wechatpay.ErrBodyTooLarge):
			status, msg = http.StatusRequestEntityTooLarge, msgTooLarge
		case errors.Is(err, ErrBodyTimeout):
			status, msg = http.StatusRequestTimeout, msgTimeout
		}
		h.fail(w, r, status, msg, merchantID, err)
		return
	}

	v := wechatpay.Verifier{MerchantID: merchantID, Keys: h.cfg.Keys, MaxSkew: h.cfg.MaxSkew, Events: h.cfg.Events}
	ctx := withBudget(r.Context(), h.budget)
	err = v.Verify(ctx, r.Header, body)
	ctx.stop()
	if errors.Is(err, wechatpay.ErrUnknownMerchant) {
		err = fmt.Errorf("merchant %s is not registered with Config.Keys: use the Store its Transport verifies with (t.Verifier.Keys, or the Store given as wechatpay.Config.Store to NewTransport), or Register the merchant with it: %w", truncate(merchantID, 32), err)
	}
	if err != nil {
		status, msg := verifyStatus(err)
		h.fail(w, r, status, msg, merchantID, err)
		return
	}

	env, err := parseEnvelope(body)
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, msgMalformed, merchantID, err)
		return
	}
	res := env.Resource
	switch {
	case res.Ciphertext == "":
		err = fmt.Errorf("%w: no resource.ciphertext", ErrMalformed)
	case res.Algorithm != algorithmAESGCM:
		err = fmt.Errorf("%w: unsupported resource.algorithm %q", ErrMalformed, truncate(res.Algorithm, 32))
	}
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, msgMalformed, merchantID, err)
		return
	}
	plaintext, err := wire.Open(aead, res.Nonce, res.AssociatedData, res.Ciphertext)
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, msgDecrypt, merchantID, fmt.Errorf("notification %q: %w", truncate(env.ID, 64), err))
		return
	}

	n := &Notification{
		ID:           env.ID,
		CreateTime:   parseTime(env.CreateTime),
		EventType:    env.EventType,
		ResourceType: env.ResourceType,
		Summary:      env.Summary,
		Resource: Resource{
			OriginalType:   res.OriginalType,
			Algorithm:      res.Algorithm,
			AssociatedData: res.AssociatedData,
			Nonce:          res.Nonce,
		},
		Plaintext:  plaintext,
		MerchantID: merchantID,
		Serial:     r.Header.Get(wire.HeaderSerial),
	}
	guardKey, token := "", ""
	if h.cfg.Guard != nil && n.ID != "" {
		guardKey, token = GuardKey(merchantID, n.ID), wire.NewNonce()
		ctx, cancel := context.WithTimeout(r.Context(), h.budget)
		state, err := h.cfg.Guard.Claim(ctx, guardKey, token)
		cancel()
		switch {
		case err != nil:
			// Losing a notification to a broken guard would be worse than
			// a duplicate, which the handler must tolerate anyway.
			guardKey = ""
			h.report(r, 0, merchantID, fmt.Errorf("duplicate guard: claim %q: %w", truncate(n.ID, 64), err))
		case state == Processed:
			w.WriteHeader(http.StatusNoContent)
			return
		case state == InProgress:
			// Acknowledging now could lose the notification if the other
			// delivery fails: have WeChat Pay come back later.
			h.fail(w, r, http.StatusServiceUnavailable, msgInProgress, merchantID, fmt.Errorf("%w: %q", ErrInProgress, truncate(n.ID, 64)))
			return
		case state != Claimed:
			guardKey = ""
			h.report(r, 0, merchantID, fmt.Errorf("duplicate guard: claim %q: unknown answer %v", truncate(n.ID, 64), state))
		}
	}

	r2 := r.WithContext(context.WithValue(r.Context(), notificationKey{}, n))
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.ContentLength = int64(len(body))
	rw := &responseWriter{ResponseWriter: w}
	returned := false // false while next runs, and after it panicked
	if guardKey != "" {
		defer func() {
			// Mark done a notification the handler accepted and returned
			// from; release one it did not accept, or panicked on
			// whatever status it had set (net/http then aborts the
			// answer), so that WeChat Pay's next delivery runs it again.
			// The panic itself is not recovered: it goes on to net/http.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), h.budget)
			defer cancel()
			if returned && rw.status >= 200 && rw.status <= 299 {
				if err := h.cfg.Guard.Done(ctx, guardKey); err != nil {
					h.report(r, 0, merchantID, fmt.Errorf("duplicate guard: done %q: %w", truncate(n.ID, 64), err))
				}
			} else if err := h.cfg.Guard.Release(ctx, guardKey, token); err != nil {
				h.report(r, 0, merchantID, fmt.Errorf("duplicate guard: release %q: %w", truncate(n.ID, 64), err))
			}
		}()
	}
	next.ServeHTTP(rw, r2)
	returned = true
	if rw.status == 0 {
		rw.WriteHeader(http.StatusNoContent)
	}
}

// verifyStatus chooses the answer to a verification failure.
func verifyStatus(err error) (int, string) {
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, wechatpay.ErrCertificateDownload):
		// We could not tell; WeChat Pay will retry.
		return http.StatusServiceUnavailable, msgUnavailable
	case errors.Is(err, wechatpay.ErrUnknownMerchant):
		return http.StatusNotFound, msgMerchant
	default:
		return http.StatusUnauthorized, msgVerify
	}
}

// aeadFor returns the cipher of merchantID's APIv3 key, or an error
// wrapping ErrUnknownMerchant.
func (h *handler) aeadFor(merchantID string) (cipher.AEAD, error) {
	if h.aead != nil {
		return h.aead, nil
	}
	key, ok := h.cfg.APIv3Keys(merchantID)
	if !ok {
		return nil, fmt.Errorf("%w %q: APIv3Keys does not know it", ErrUnknownMerchant, truncate(merchantID, 32))
	}
	if e, ok := h.aeads.Get(merchantID); ok && e.key == key {
		return e.aead, nil
	}
	a, err := wire.NewAEAD(key)
	if err != nil {
		return nil, fmt.Errorf("APIv3Keys for merchant %s: %w", merchantID, err)
	}
	h.aeads.Add(merchantID, aeadOfKey{key: key, aead: a})
	return a, nil
}

// readBody reads the request body, at most limit bytes, within timeout.
// It holds memory in proportion to the bytes that arrived: a declared
// Content-Length caps the buffer but never sizes it up front, since a
// sender may declare a megabyte and send nothing.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, timeout time.Duration) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, fmt.Errorf("%w (Content-Length %d, limit %d)", wechatpay.ErrBodyTooLarge, r.ContentLength, limit)
	}
	rc := http.NewResponseController(w)
	// Without read deadlines (some wrapped ResponseWriters), the body is
	// read unbounded in time, as before.
	deadline := rc.SetReadDeadline(time.Now().Add(timeout)) == nil
	want := limit + 1 // without a length, one byte over the limit tells
	if r.ContentLength >= 0 {
		want = r.ContentLength
	}
	b, err := readUpTo(http.MaxBytesReader(w, r.Body, limit), want)
	if err != nil {
		// net/http would otherwise try to drain the rest of the body
		// after the answer, to reuse the connection.
		w.Header().Set("Connection", "close")
	} else if deadline {
		// Lifted once the body is in: net/http's background read would
		// otherwise cancel the request's context while the handler runs.
		rc.SetReadDeadline(time.Time{})
	}
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, fmt.Errorf("%w (%s, %d bytes received)", ErrBodyTimeout, timeout, len(b))
	case errors.As(err, new(*http.MaxBytesError)):
		return nil, fmt.Errorf("%w (limit %d)", wechatpay.ErrBodyTooLarge, limit)
	case err != nil:
		return nil, fmt.Errorf("reading body: %w", err)
	case r.ContentLength >= 0 && int64(len(b)) < r.ContentLength:
		return nil, fmt.Errorf("reading body: %w (%d of %d bytes)", io.ErrUnexpectedEOF, len(b), r.ContentLength)
	case r.ContentLength >= 0:
		// net/http's server stops at Content-Length; other callers may not.
		var one [1]byte
		if n, _ := r.Body.Read(one[:]); n > 0 {
			return nil, errors.New("reading body: body longer than its Content-Length")
		}
	}
	return b, nil
}

// readUpTo reads src to its end or until want bytes have arrived, growing
// its buffer (doubling, capped at want) only as bytes arrive. It returns
// what arrived, with src's error other than io.EOF.
func readUpTo(src io.Reader, want int64) ([]byte, error) {
	b := make([]byte, 0, min(want, initialBodyBuffer))
	for int64(len(b)) < want {
		if len(b) == cap(b) {
			nb := make([]byte, len(b), min(want, 2*int64(cap(b))))
			copy(nb, b)
			b = nb
		}
		n, err := src.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
	return b, nil
}

func (h *handler) fail(w http.ResponseWriter, r *http.Request, status int, msg, merchantID string, err error) {
	h.report(r, status, merchantID, err)
	if h.cfg.Events != nil {
		// The headers are the sender's: bounded before they are passed on.
		h.cfg.Events(r.Context(), wechatpay.Event{
			Kind:       wechatpay.EventCallbackRefused,
			Time:       time.Now(),
			MerchantID: truncate(merchantID, 64),
			Serial:     truncate(r.Header.Get(wire.HeaderSerial), 64),
			RequestID:  truncate(r.Header.Get(wire.HeaderRequestID), 64),
			Host:       truncate(r.Host, 255),
			Status:     status,
			Err:        err,
		})
	}
	Fail(w, status, msg)
}

func (h *handler) report(r *http.Request, status int, merchantID string, err error) {
	if h.cfg.ErrorHandler != nil {
		h.cfg.ErrorHandler(r, &Error{Status: status, MerchantID: merchantID, Err: err})
	}
}

// failure is WeChat Pay's failure answer (docs/protocol.md §6).
type failure struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Fail answers a notification with status and WeChat Pay's failure JSON,
// {"code":"FAIL","message":message}; WeChat Pay then delivers the
// notification again later. Use a 4xx or 5xx status: WeChat Pay decides
// by the status alone, and takes 200 and 204 for success whatever the
// body. Keep message free of internal details.
func Fail(w http.ResponseWriter, status int, message string) {
	body, err := json.Marshal(failure{Code: "FAIL", Message: message})
	if err != nil {
		panic(err) // two strings always marshal
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", fmt.Sprint(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(body)
}

// responseWriter notes whether the handler answered.
type responseWriter struct {
	http.ResponseWriter
	status int // 0 until the handler sends a final status
}

func (w *responseWriter) WriteHeader(status int) {
	if w.status == 0 && (status >= 200 || status == http.StatusSwitchingProtocols) {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Flush sends what was written so far (with a 200 status if none was
// set), for handlers that flush.
func (w *responseWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
