package middleware

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/wxpaykit/wechatpay"
)

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
