package middleware_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/middleware"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// bodyServer is the middleware on an httptest server whose requests
// signal reading when the middleware first reads their body.
type bodyServer struct {
	srv     *wechatpaytest.Server
	ts      *httptest.Server
	reading chan struct{} // one send per request, at its first body Read
	ran     chan struct{} // one send per run of the handler

	mu   sync.Mutex
	errs []error

	serverLog lockedBuffer // the http.Server's ErrorLog
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newBodyServer(t *testing.T, config func(*middleware.Config), answer func(w http.ResponseWriter, r *http.Request)) *bodyServer {
	t.Helper()
	b := &bodyServer{reading: make(chan struct{}, 1024), ran: make(chan struct{}, 1024)}
	b.srv = wechatpaytest.NewServer()
	t.Cleanup(b.srv.Close)
	store, err := wechatpay.NewStore(wechatpay.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.Register(b.srv.Config()); err != nil {
		t.Fatal(err)
	}
	m := b.srv.Merchant()
	cfg := middleware.Config{Keys: store, MerchantID: m.ID, APIv3Key: m.APIv3Key, ErrorHandler: func(_ *http.Request, err error) {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.errs = append(b.errs, err)
	}}
	if config != nil {
		config(&cfg)
	}
	mw := middleware.Notifications(cfg)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.ran <- struct{}{}
		if answer != nil {
			answer(w, r)
		}
	}))
	b.ts = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = &signalReader{ReadCloser: r.Body, first: b.reading}
		mw.ServeHTTP(w, r)
	}))
	b.ts.Config.ErrorLog = log.New(&b.serverLog, "", 0)
	b.ts.Start()
	t.Cleanup(b.ts.Close)
	return b
}

func (b *bodyServer) errors() []error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]error(nil), b.errs...)
}

// signalReader sends on first at its first Read.
type signalReader struct {
	io.ReadCloser
	first chan<- struct{}
	once  sync.Once
}

func (s *signalReader) Read(p []byte) (int, error) {
	s.once.Do(func() { s.first <- struct{}{} })
	return s.ReadCloser.Read(p)
}

// headerOnly opens a connection to ts and sends a notification's request
// line and headers declaring length bytes of body, and no body.
func headerOnly(t *testing.T, ts *httptest.Server, length int) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := fmt.Fprintf(c, "POST /notify HTTP/1.1\r\nHost: merchant.example\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", length); err != nil {
		t.Fatal(err)
	}
	return c
}

func heapAlloc() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestHeaderOnlyRequestsHoldNoBodyMemory plays issue 16's attack 3: many
// connections declare a body of MaxBodySize and send none. While the
// middleware waits for their bodies, the heap holds a few KiB per
// connection, not the declared megabyte.
func TestHeaderOnlyRequestsHoldNoBodyMemory(t *testing.T) {
	const conns, declared = 64, middleware.DefaultMaxBodySize
	b := newBodyServer(t, nil, nil)
	before := heapAlloc()
	for range conns {
		headerOnly(t, b.ts, declared)
	}
	for range conns {
		<-b.reading // every request is inside the middleware's body read
	}
	after := heapAlloc()
	growth := int64(after) - int64(before)
	t.Logf("heap growth with %d header-only requests declaring %d bytes: %d bytes (%d per connection)", conns, declared, growth, growth/conns)
	if limit := int64(conns * declared / 16); growth > limit {
		t.Errorf("heap grew by %d bytes for %d requests that declared %d bytes each and sent none; want under %d (memory in proportion to bytes received)", growth, conns, declared, limit)
	}
	if n := len(b.ran); n != 0 {
		t.Errorf("handler ran %d times; want 0", n)
	}
}

// TestSlowBodyTimesOut: a body that does not arrive within BodyTimeout is
// answered 408 with the failure JSON and never reaches the handler.
func TestSlowBodyTimesOut(t *testing.T) {
	b := newBodyServer(t, func(c *middleware.Config) { c.BodyTimeout = 50 * time.Millisecond }, nil)
	c := headerOnly(t, b.ts, 1000)
	if _, err := io.WriteString(c, `{"id":"EV-`); err != nil { // ten bytes of the thousand
		t.Fatal(err)
	}
	<-b.reading
	resp, err := http.ReadResponse(bufio.NewReader(c), nil) // waits for the middleware's answer
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	wantFailure(t, resp.StatusCode, body, http.StatusRequestTimeout)
	errs := b.errors()
	var me *middleware.Error
	if len(errs) != 1 || !errors.Is(errs[0], middleware.ErrBodyTimeout) || !errors.As(errs[0], &me) || me.Status != http.StatusRequestTimeout {
		t.Errorf("ErrorHandler got %v; want one *Error with status 408 wrapping ErrBodyTimeout", errs)
	}
	if n := len(b.ran); n != 0 {
		t.Errorf("handler ran %d times; want 0", n)
	}
}

// TestBodyTimeoutEndsWithTheBody: once the body is in, the read deadline
// is lifted, so a handler that runs past BodyTimeout keeps a live request
// context (net/http would otherwise cancel it when its background read
// hits the deadline).
func TestBodyTimeoutEndsWithTheBody(t *testing.T) {
	const timeout = 200 * time.Millisecond
	ctxErr := make(chan error, 1)
	b := newBodyServer(t, func(c *middleware.Config) { c.BodyTimeout = timeout }, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(3 * timeout) // past the deadline, whatever the load
		ctxErr <- r.Context().Err()
	})
	resp, err := b.srv.Notify(context.Background(), b.ts.URL, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("answered %d; want 204 (errors %v)", resp.StatusCode, b.errors())
	}
	if err := <-ctxErr; err != nil {
		t.Errorf("request context after BodyTimeout = %v; want live", err)
	}
}
