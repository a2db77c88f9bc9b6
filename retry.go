package wechatpay

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

// Retryable reports whether the call that failed with err may simply be
// made again (with a fresh signature: retries go outside the Transport):
//
//   - a network error that happened before the request was sent (the
//     connection could not be made: dial, DNS);
//   - a 429 (FREQUENCY_LIMITED, RATELIMIT_EXCEEDED), after a pause;
//   - a 5xx such as 500 SYSTEM_ERROR or 503 SERVICE_UNAVAILABLE.
//
// Making a state-changing call again means sending the same parameters,
// above all the same out_trade_no or out_refund_no, which WeChat Pay
// de-duplicates; never a new number, which could pay or refund twice.
//
// It is false for everything else, in particular for a signature that did
// not verify (*VerifyError: retrying does not make an unauthenticated
// answer trustworthy), for any other 4xx (a business or parameter error
// the same request will meet again), and for an *OutcomeUnknownError,
// which asks for a query first.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	var unknown *OutcomeUnknownError
	var verr *VerifyError
	var e *APIError
	switch {
	case errors.As(err, &unknown), errors.As(err, &verr):
		return false
	case errors.As(err, &e):
		switch {
		case e.StatusCode == http.StatusTooManyRequests,
			e.Code == "FREQUENCY_LIMITED", e.Code == "RATELIMIT_EXCEEDED", e.Code == "RATE_LIMITED":
			return true
		case e.StatusCode >= 500 && e.StatusCode <= 599:
			return true
		}
		return false
	}
	return dialFailed(err)
}

// An OutcomeUnknownError is the failure of a state-changing call (POST,
// PUT, PATCH, DELETE) whose request may have reached WeChat Pay but whose
// answer did not come back verified: a timeout after sending, a reset
// connection, an answer whose signature did not verify. The order may have
// been placed, closed or refunded. Query it by the merchant's own number
// (out_trade_no, out_refund_no) before trying again; trying again with the
// same number is safe, since WeChat Pay de-duplicates by it, but a new
// number could pay or refund twice.
type OutcomeUnknownError struct {
	Method    string // the request's method
	Path      string // the request's URL path
	RequestID string // WeChat Pay's Request-ID, when an answer arrived
	// NumberName and Number, when the call's client set them, name the
	// merchant's business number to query by (out_trade_no,
	// out_refund_no, out_bill_no, out_order_no, …) and its value.
	NumberName, Number string
	Err                error // what went wrong
}

func (e *OutcomeUnknownError) Error() string {
	var b strings.Builder
	refused := signRefusal(e.Err)
	if refused != nil {
		// The cause first: the same signature was refused, so this
		// request most likely was too; but its answer did not verify,
		// so that is not certain.
		b.WriteString(signRefusalText(e.Err, refused))
		b.WriteString(". So the outcome is unknown: ")
	} else {
		b.WriteString("wechatpay: outcome unknown: ")
	}
	b.WriteString(e.Method)
	b.WriteByte(' ')
	b.WriteString(wire.Truncate(e.Path, 200))
	if refused != nil {
		b.WriteString(" was most likely refused for the same signature, but its answer could not be verified")
	} else {
		b.WriteString(" may have reached WeChat Pay, but no verified answer came back")
	}
	if e.RequestID != "" {
		b.WriteString(" [Request-ID ")
		b.WriteString(wire.Truncate(e.RequestID, 64))
		b.WriteByte(']')
	}
	if e.Number != "" {
		fmt.Fprintf(&b, "; query by %s %q before trying again, and never send it again under a new number", e.NumberName, wire.Truncate(e.Number, 64))
	} else {
		b.WriteString("; query by your own order or refund number (out_trade_no, out_refund_no) before trying again")
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(inner(e.Err))
	}
	return onePrefix(b.String())
}

func (e *OutcomeUnknownError) Unwrap() error { return e.Err }

// ClassifyError returns the error to report for req, which failed with
// err (as returned by an http.Client carrying a Transport). For a
// state-changing request whose outcome is unknown (see
// OutcomeUnknownError) it returns an *OutcomeUnknownError wrapping err;
// otherwise err itself. Only errors that certainly happened before
// anything was sent (the connection could not be made) are taken for "not
// sent": any other failure of a state-changing call is an unknown outcome.
func ClassifyError(req *http.Request, err error) error {
	if err == nil || req == nil {
		return err
	}
	var unknown *OutcomeUnknownError
	var refused *signRefusedError
	if errors.As(err, &unknown) || errors.As(err, &refused) {
		return err
	}
	// A refused signature: say so first, whatever else follows.
	causeFirst := err
	if apiErr := signRefusal(err); apiErr != nil {
		causeFirst = &signRefusedError{apiErr: apiErr, err: err}
	}
	switch req.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		return causeFirst
	}
	e := &OutcomeUnknownError{Method: req.Method, Err: err}
	if req.URL != nil {
		e.Path = req.URL.Path
	}
	// First: the Transport refused before sending (its own step failed,
	// such as the sensitive-field step whose certificate download did not
	// verify). Whatever that error holds, nothing was sent. Only the error
	// RoundTrip returned is looked at (bare, or as http.Client wraps it),
	// never one nested deeper, which could be a download's own.
	if refusedBeforeSending(err) {
		return causeFirst
	}
	// Then: an answer came that did not verify. An *APIError inside it
	// is that of a certificate download, not the answer to req.
	var verr *VerifyError
	if errors.As(err, &verr) {
		e.RequestID = verr.RequestID
		return e
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) && !errors.Is(err, ErrCertificateDownload) {
		return err // WeChat Pay answered, and CheckResponse read the answer
	}
	var notSentErr notSentError // the Transport refused before sending
	if notSent(err) || errors.As(err, &notSentErr) || errors.Is(err, ErrNotConfigured) || errors.Is(err, ErrHostNotAllowed) {
		return causeFirst // certainly not sent: the outcome is known
	}
	return e
}

// refusedBeforeSending reports whether err is the Transport's own
// refusal to send: a notSentError as RoundTrip returned it, bare or in
// the *url.Error of http.Client.
func refusedBeforeSending(err error) bool {
	if ue, ok := err.(*url.Error); ok {
		err = ue.Err
	}
	_, ok := err.(notSentError)
	return ok
}

// notSent reports whether err certainly happened before any byte of the
// request was written: no connection could be made, or TLS refused the
// server's certificate.
func notSent(err error) bool {
	if dialFailed(err) {
		return true
	}
	var certErr *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	return errors.As(err, &certErr) || errors.As(err, &unknownCA) || errors.As(err, &hostErr)
}

// dialFailed reports whether err is a failure to connect: a name that did
// not resolve or a dial that failed. Nothing was sent, and trying again
// later may work.
func dialFailed(err error) bool {
	var verr *VerifyError
	if errors.As(err, &verr) {
		return false
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
