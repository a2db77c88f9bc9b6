package wire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// ErrBodyTooLarge is wechatpay.ErrBodyTooLarge.
var ErrBodyTooLarge = errors.New("wechatpay: body exceeds size limit")

const defaultUserAgent = "wxpaykit-wechatpay-go/1 (+https://github.com/wxpaykit/wechatpay)"

// UserAgent returns ua, or the library's default User-Agent when empty.
func UserAgent(ua string) string {
	if ua == "" {
		return defaultUserAgent
	}
	return ua
}

// Base returns rt, or http.DefaultTransport when nil.
func Base(rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		return http.DefaultTransport
	}
	return rt
}

type unverifiedKey struct{}

// WithoutVerification marks a request whose successful answer may be
// passed on unverified; see UnverifiedAllowed.
func WithoutVerification(ctx context.Context) context.Context {
	return context.WithValue(ctx, unverifiedKey{}, true)
}

// UnverifiedAllowed reports whether a 2xx answer to req may be passed on
// unverified: only when the caller marked it, for a GET that is not
// following a redirect.
func UnverifiedAllowed(req *http.Request) bool {
	if req.Method != http.MethodGet && req.Method != "" || req.Response != nil {
		return false
	}
	v, _ := req.Context().Value(unverifiedKey{}).(bool)
	return v
}

// ReadResponseBody reads and closes resp.Body, bounded by limit. HEAD
// answers and 1xx, 204 and 304 responses have no body whatever their
// Content-Length says.
func ReadResponseBody(resp *http.Response, method string, limit int64) ([]byte, error) {
	defer resp.Body.Close()
	if method == http.MethodHead || resp.StatusCode == http.StatusNoContent ||
		resp.StatusCode == http.StatusNotModified || resp.StatusCode < 200 {
		return nil, nil
	}
	return ReadAll(resp.Body, resp.ContentLength, limit)
}

// ReadRequestBody reads req.Body with a limit and always closes it.
func ReadRequestBody(req *http.Request, limit int64) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	defer req.Body.Close()
	size := req.ContentLength
	if size <= 0 {
		size = -1 // for client requests, 0 with a body means unknown
	}
	b, err := ReadAll(req.Body, size, limit)
	if err != nil {
		return nil, fmt.Errorf("wechatpay: reading request body: %w", err)
	}
	return b, nil
}

// ReadAll reads r up to limit bytes, using size (a Content-Length, or -1)
// to allocate once. More than limit bytes is ErrBodyTooLarge.
func ReadAll(r io.Reader, size, limit int64) ([]byte, error) {
	if size > limit {
		return nil, fmt.Errorf("%w (%d bytes, limit %d)", ErrBodyTooLarge, size, limit)
	}
	if size >= 0 {
		b := make([]byte, size, size+1)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		// Content-Length is a promise; make sure nothing follows.
		var one [1]byte
		if n, _ := r.Read(one[:]); n > 0 {
			return nil, errors.New("body longer than its Content-Length")
		}
		return b, nil
	}
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w (limit %d bytes)", ErrBodyTooLarge, limit)
	}
	return b, nil
}

type signedBodyKey struct{}

// WithSignedBody marks a request whose signature covers signed instead of
// its body: the meta JSON of a multipart upload (docs/protocol.md §1.4).
// The Transport refuses the request unless signed occurs verbatim in the
// body it sends.
func WithSignedBody(ctx context.Context, signed []byte) context.Context {
	return context.WithValue(ctx, signedBodyKey{}, bytes.Clone(signed))
}

// SignedBody returns the bytes marked by WithSignedBody, if any.
func SignedBody(ctx context.Context) ([]byte, bool) {
	b, ok := ctx.Value(signedBodyKey{}).([]byte)
	return b, ok
}

// Body is a body over bytes held in memory, for both directions: the
// replayable body of a request a transport sends, and the body of a
// response it verified. One allocation, where io.NopCloser over a
// bytes.Reader takes two.
type Body struct{ bytes.Reader }

// NewBody returns a Body reading b.
func NewBody(b []byte) *Body {
	r := &Body{}
	r.Reset(b)
	return r
}

// Close does nothing: the bytes stay for whoever holds them.
func (*Body) Close() error { return nil }

// SetBody gives r the body b, replayable (Body, GetBody, ContentLength),
// keeping http.NoBody for an empty one. rd, if not nil, is the Body to
// use first (allocated with r, say).
func SetBody(r *http.Request, b []byte, rd *Body) {
	r.ContentLength = int64(len(b))
	if len(b) == 0 {
		r.Body = http.NoBody
		r.GetBody = noBody
		return
	}
	if rd == nil {
		rd = new(Body)
	}
	rd.Reset(b)
	r.Body = rd
	r.GetBody = func() (io.ReadCloser, error) { return NewBody(b), nil }
}

// verifiedBody is the body of a verified response together with the
// value of its verified mark: one allocation for both.
type verifiedBody struct {
	Body
	mark [1]string
}

// SetVerifiedBody marks resp as verified (see MarkVerified) and gives it
// a body reading b.
func SetVerifiedBody(resp *http.Response, b []byte) {
	vb := &verifiedBody{mark: [1]string{verifiedToken}}
	vb.Reset(b)
	resp.Header[VerifiedHeader] = vb.mark[:]
	resp.Body = vb
	resp.ContentLength = int64(len(b))
}

func noBody() (io.ReadCloser, error) { return http.NoBody, nil }
