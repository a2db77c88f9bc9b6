package transfers_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/transfers"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

const createRoute = "POST /v3/fund-app/mch-transfer/transfer-bills"

// resetProxy forwards HTTP/1.1 requests to upstream and their answers
// back, except that while armed it forwards a create request, reads
// WeChat Pay's answer, and resets the merchant's connection instead of
// answering: the bill is made, the merchant sees a reset. Only a proxy
// can produce that.
type resetProxy struct {
	ln       net.Listener
	upstream string
	armed    atomic.Bool
	done     chan struct{}
}

func newResetProxy(t *testing.T, upstream string) *resetProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &resetProxy{ln: ln, upstream: strings.TrimPrefix(upstream, "http://"), done: make(chan struct{})}
	go p.serve()
	t.Cleanup(func() { ln.Close(); <-p.done })
	return p
}

func (p *resetProxy) serve() {
	defer close(p.done)
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.conn(c) // ends when either side closes; the test's cleanup closes the clients
	}
}

func (p *resetProxy) conn(c net.Conn) {
	defer c.Close()
	up, err := net.Dial("tcp", p.upstream)
	if err != nil {
		return
	}
	defer up.Close()
	cr, ur := bufio.NewReader(c), bufio.NewReader(up)
	for {
		req, err := http.ReadRequest(cr)
		if err != nil {
			return
		}
		if err := req.Write(up); err != nil {
			return
		}
		resp, err := http.ReadResponse(ur, req)
		if err != nil {
			return
		}
		if req.Method+" "+req.URL.Path == createRoute && p.armed.CompareAndSwap(true, false) {
			resp.Body.Close()
			c.(*net.TCPConn).SetLinger(0) // close with RST
			return
		}
		err = resp.Write(c)
		resp.Body.Close()
		if err != nil {
			return
		}
	}
}

// Each way a create's answer can be lost or unverifiable is an
// *OutcomeUnknownError naming the out_bill_no, sent once and never again
// by the library; a query by the out_bill_no then tells what happened.
func TestCreateOutcomeUnknown(t *testing.T) {
	for _, tc := range []struct {
		name string
		// arm sets the fault up; made says whether the simulator makes the
		// bill before the answer is lost.
		arm  func(e *env, p *resetProxy)
		made bool
		hang bool // the client gives up (times out) once the bill is made
	}{
		{"hang after the work, client timeout", func(e *env, _ *resetProxy) {
			e.srv.FailRoute(createRoute, wechatpaytest.RouteTimeout, 1)
		}, true, true},
		{"connection reset after the work", func(_ *env, p *resetProxy) { p.armed.Store(true) }, true, false},
		{"unsigned 200", func(e *env, _ *resetProxy) { e.srv.SetFault(wechatpaytest.FaultNoHeaders) }, true, false},
		{"500 SYSTEM_ERROR", func(e *env, _ *resetProxy) {
			e.srv.FailRoute(createRoute, wechatpaytest.RouteSystemError, 1)
		}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var proxy *resetProxy
			e := newEnv(t, func(srv *wechatpaytest.Server) wechatpay.Config {
				proxy = newResetProxy(t, srv.URL)
				cfg := srv.Config()
				cfg.BaseURL = "http://" + proxy.ln.Addr().String()
				cfg.Base = &http.Transport{}
				return cfg
			})
			e.c.BaseURL = "http://" + proxy.ln.Addr().String()
			ctx := context.Background()
			// Download the certificates first, so that only the create
			// meets the fault.
			if _, err := e.c.QueryByOutBillNo(ctx, "WARMUP01"); err == nil {
				t.Fatal("a bill nobody made was found")
			}

			tc.arm(e, proxy)
			const no = "UNKNOWN01"
			// In the hang case the client gives up once the simulator has
			// made the bill: its timeout, on an event rather than the clock.
			cctx, giveUp := context.WithCancel(ctx)
			defer giveUp()
			if tc.hang {
				go func() {
					for cctx.Err() == nil {
						if _, err := e.c.QueryByOutBillNo(cctx, no); err == nil {
							break
						}
						time.Sleep(5 * time.Millisecond)
					}
					giveUp()
				}()
			}
			_, err := e.c.Create(cctx, e.bill(no, 800, ""))
			wantUnknown(t, "Create", err, no)
			giveUp()
			e.srv.SetFault(wechatpaytest.FaultNone)
			if n := e.sent.count(createRoute); n != 1 {
				t.Errorf("create sent %d times; want exactly 1 (no automatic retry)", n)
			}

			b, err := e.c.QueryByOutBillNo(ctx, no)
			switch {
			case tc.made && (err != nil || b.State != transfers.StateWaitUserConfirm):
				t.Fatalf("query after the lost answer = %v, %v; want the bill, WAIT_USER_CONFIRM", b, err)
			case !tc.made:
				wantAPIError(t, "query after a 500", err, http.StatusNotFound, "NOT_FOUND")
			}
			// Resolved: the same number again is safe either way, and
			// gives the one bill.
			again, err := e.c.Create(ctx, e.bill(no, 800, ""))
			if err != nil {
				t.Fatal(err)
			}
			if tc.made && again.TransferBillNo != b.TransferBillNo {
				t.Errorf("the same out_bill_no again made bill %s; want %s", again.TransferBillNo, b.TransferBillNo)
			}
		})
	}
}

// A cancel whose answer is lost is an unknown outcome too; the query
// says CANCELLED.
func TestCancelOutcomeUnknown(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	if _, err := e.c.Create(ctx, e.bill("CXL01", 300, "")); err != nil {
		t.Fatal(err)
	}
	e.srv.SetFault(wechatpaytest.FaultTamperBody)
	_, err := e.c.Cancel(ctx, "CXL01")
	wantUnknown(t, "Cancel", err, "CXL01")
	var verr *wechatpay.VerifyError
	if !errors.As(err, &verr) {
		t.Errorf("Cancel: %v; want the *VerifyError inside", err)
	}
	e.srv.SetFault(wechatpaytest.FaultNone)
	if q, err := e.c.QueryByOutBillNo(ctx, "CXL01"); err != nil || q.State != transfers.StateCancelled {
		t.Errorf("query = %v, %v; want CANCELLED", q, err)
	}
}
