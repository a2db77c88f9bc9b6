package wechatpay

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

// A VerifyError describes a response or callback that failed verification.
// All of its fields are safe to log.
type VerifyError struct {
	MerchantID string
	Serial     string
	RequestID  string
	Err        error // wraps one of the Err values of this package, or a context or fetch error
}

func (e *VerifyError) Error() string {
	var b strings.Builder
	b.WriteString("wechatpay: verify")
	if e.MerchantID != "" {
		fmt.Fprintf(&b, " merchant %s", e.MerchantID)
	}
	if e.Serial != "" {
		fmt.Fprintf(&b, " serial %q", wire.Truncate(e.Serial, 64))
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " request %s", wire.Truncate(e.RequestID, 64))
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return onePrefix(b.String())
}

func (e *VerifyError) Unwrap() error { return e.Err }

// A KeySource returns the key that checks a WeChat Pay signature made with
// the given serial (a platform certificate serial or a PUB_KEY_ID_) for a
// merchant. Implementations must be safe for concurrent use and return an
// error wrapping ErrUnknownSerial when the serial is not known. *Store is
// the implementation of this package.
type KeySource interface {
	PublicKey(ctx context.Context, merchantID, serial string) (*rsa.PublicKey, error)
}

// A Verifier checks the signature of WeChat Pay responses and callbacks for
// one merchant. It is safe for concurrent use; do not change its fields
// after first use. The zero value is not usable: Keys is required.
type Verifier struct {
	// MerchantID selects the merchant's keys in Keys. Required for a
	// *Store shared by several merchants.
	MerchantID string
	// Keys supplies verification keys. Required: a Verifier without keys
	// fails every verification.
	Keys KeySource
	// MaxSkew is the largest accepted distance between Wechatpay-Timestamp
	// and now. Zero means DefaultMaxSkew (5 minutes).
	MaxSkew time.Duration
	// Events, if set, receives an event for every verification that
	// fails, by class (EventBadSignature, EventClockSkew,
	// EventSignatureProbe, EventUnknownSerial, EventVerifyFailed).
	Events EventHook

	now func() time.Time // test hook; nil means time.Now
}

// Verify checks the Wechatpay-* headers and the body of a response or a
// callback request. It checks, in order and before any key lookup: that
// the headers are present and well formed, that the timestamp is within
// MaxSkew, and that the signature is not a probe; then it asks Keys for the
// key of Wechatpay-Serial (which may fetch certificates, bounded by ctx) and
// checks the signature. Any failure is returned as a *VerifyError wrapping
// one of ErrMissingSignature, ErrSignatureType, ErrClockSkew,
// ErrSignatureProbe, ErrUnknownSerial, ErrBadSignature, or the error of
// the key lookup. A nil error means the body is authentic.
func (v *Verifier) Verify(ctx context.Context, h http.Header, body []byte) error {
	serial := headerValue(h, wire.HeaderSerial)
	if err := v.verify(ctx, h, serial, body); err != nil {
		ve := &VerifyError{MerchantID: v.MerchantID, Serial: serial, RequestID: headerValue(h, wire.HeaderRequestID), Err: err}
		if v != nil && v.Events != nil {
			emit(ctx, v.Events, Event{Kind: verifyEventKind(err), MerchantID: v.MerchantID, Serial: wire.Truncate(serial, 64), RequestID: wire.Truncate(ve.RequestID, 64), Err: ve})
		}
		return ve
	}
	return nil
}

func (v *Verifier) verify(ctx context.Context, h http.Header, serial string, body []byte) error {
	if v == nil || v.Keys == nil {
		return errors.New("wechatpay: verifier has no key source")
	}
	ts := headerValue(h, wire.HeaderTimestamp)
	nonce := headerValue(h, wire.HeaderNonce)
	sig := headerValue(h, wire.HeaderSignature)
	if ts == "" || nonce == "" || sig == "" || serial == "" {
		return fmt.Errorf("%w: need %s, %s, %s and %s", ErrMissingSignature, wire.HeaderTimestamp, wire.HeaderNonce, wire.HeaderSignature, wire.HeaderSerial)
	}
	if typ := headerValue(h, wire.HeaderSignatureType); typ != "" && typ != wire.SchemeRSA {
		return fmt.Errorf("%w %q", ErrSignatureType, wire.Truncate(typ, 40))
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(ts) > 12 {
		return fmt.Errorf("%w: %s is not a Unix time in seconds", ErrMissingSignature, wire.HeaderTimestamp)
	}
	now := time.Now
	if v.now != nil {
		now = v.now
	}
	maxSkew := v.MaxSkew
	if maxSkew <= 0 {
		maxSkew = DefaultMaxSkew
	}
	// Compare in seconds: no overflow for any int64 timestamp.
	if d := now().Unix() - sec; d > int64(maxSkew/time.Second) || d < -int64(maxSkew/time.Second) {
		return fmt.Errorf("%w: %s is %ds from now, more than %s", ErrClockSkew, wire.HeaderTimestamp, d, maxSkew)
	}
	if strings.HasPrefix(sig, wire.ProbePrefix) {
		return ErrSignatureProbe
	}
	key, err := v.Keys.PublicKey(ctx, v.MerchantID, serial)
	if err != nil {
		return err
	}
	return wire.VerifyResponse(v.checkFunc(), key, ts, nonce, body, sig)
}

// checkFunc is the RSA verification of a Verifier's keys: that of its
// *Store (StoreOptions.VerifyPKCS1v15, such as OpenSSL's), or nil for
// crypto/rsa.
func (v *Verifier) checkFunc() wire.VerifyFunc {
	if s, ok := v.Keys.(*Store); ok && s.opts.VerifyPKCS1v15 != nil {
		return s.opts.VerifyPKCS1v15
	}
	return nil
}

// headerValue is h.Get for canonical names without the allocation-free
// path's pitfalls: it returns the first value, trimmed.
func headerValue(h http.Header, name string) string {
	if v := h[name]; len(v) > 0 {
		return strings.TrimSpace(v[0])
	}
	return ""
}
