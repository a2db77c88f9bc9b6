package middleware

import (
	"crypto/cipher"
	"errors"
	"fmt"
	"net/http"
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
