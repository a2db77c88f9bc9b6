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
	// Without read deadlines (a ResponseWriter that offers none), the body
	// is read unbounded in time, as before.
	dl := readDeadliner(w)
	if dl != nil && dl.SetReadDeadline(time.Now().Add(timeout)) != nil {
		dl = nil
	}
	// With a length, reading stops at it; without, MaxBytesReader stops
	// one byte over the limit and has net/http close the connection.
	src, want := r.Body, r.ContentLength
	if want < 0 {
		src, want = http.MaxBytesReader(w, r.Body, limit), limit+1
	}
	b, err := readUpTo(src, want)
	if err != nil {
		// net/http would otherwise try to drain the rest of the body
		// after the answer, to reuse the connection.
		w.Header().Set("Connection", "close")
	} else if dl != nil {
		// Lifted once the body is in: net/http's background read would
		// otherwise cancel the request's context while the handler runs.
		dl.SetReadDeadline(time.Time{})
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

// readDeadliner finds SetReadDeadline on w or a ResponseWriter it wraps,
// as http.ResponseController does, without the error value the
// controller makes when there is none; nil if there is none.
func readDeadliner(w http.ResponseWriter) interface{ SetReadDeadline(time.Time) error } {
	for {
		switch t := w.(type) {
		case interface{ SetReadDeadline(time.Time) error }:
			return t
		case interface{ Unwrap() http.ResponseWriter }:
			w = t.Unwrap()
		default:
			return nil
		}
	}
}
