package wechatpaytest

import (
	"net/http"
)

// simRoutes are the simulator's built-in routes. FailRoute takes these
// patterns.
var simRoutes = []string{
	"POST /v3/pay/transactions/{kind}",
	"POST /v3/pay/partner/transactions/{kind}",
	"GET /v3/pay/transactions/id/{id}",
	"GET /v3/pay/transactions/out-trade-no/{no}",
	"GET /v3/pay/partner/transactions/id/{id}",
	"GET /v3/pay/partner/transactions/out-trade-no/{no}",
	"POST /v3/pay/transactions/out-trade-no/{no}/close",
	"POST /v3/pay/partner/transactions/out-trade-no/{no}/close",
	"POST /v3/refund/domestic/refunds",
	"GET /v3/refund/domestic/refunds/{no}",
	"GET /v3/bill/tradebill",
	"POST /v3/profitsharing/receivers/add",
	"POST /v3/profitsharing/receivers/delete",
	"POST /v3/profitsharing/orders",
	"GET /v3/profitsharing/orders/{no}",
	"POST /v3/profitsharing/orders/unfreeze",
	"GET /v3/profitsharing/transactions/{id}/amounts",
	"POST /v3/profitsharing/return-orders",
	"GET /v3/profitsharing/return-orders/{no}",
}

func (s *Server) isSimRoute(pattern string) bool {
	for _, p := range simRoutes {
		if p == pattern {
			return true
		}
	}
	return false
}

// registerSimRoutes fills s.sims.
func (s *Server) registerSimRoutes() {
	handlers := []http.HandlerFunc{
		s.servePrepay(false),
		s.servePrepay(true),
		s.serveQuery(false, true),
		s.serveQuery(false, false),
		s.serveQuery(true, true),
		s.serveQuery(true, false),
		s.serveClose(false),
		s.serveClose(true),
		s.serveRefund,
		s.serveRefundQuery,
		s.serveTradeBill,
		s.serveReceiverAdd,
		s.serveReceiverDelete,
		s.serveShare,
		s.serveShareQuery,
		s.serveUnfreeze,
		s.serveUnsplit,
		s.serveReturn,
		s.serveReturnQuery,
	}
	s.sims = http.NewServeMux()
	for i, p := range simRoutes {
		s.sims.Handle(p, s.withFaults(p, handlers[i]))
	}
}

var (
	errSystem    = &simError{http.StatusInternalServerError, "SYSTEM_ERROR", "系统繁忙，请稍后重试", nil}
	errFrequency = &simError{http.StatusTooManyRequests, "FREQUENCY_LIMITED", "频率超限，请降低请求频率", nil}
)

// withFaults applies the faults queued by FailRoute for pattern to h.
func (s *Server) withFaults(pattern string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch s.takeFault(pattern) {
		case RouteSystemError:
			writeSimError(w, errSystem)
		case RouteFrequencyLimited:
			writeSimError(w, errFrequency)
		case RouteTimeout:
			h(&bufferedWriter{header: make(http.Header)}, r) // done, but never answered
			s.hang(r.Context())
			panic(http.ErrAbortHandler) // end the connection without an answer
		default:
			h(w, r)
		}
	}
}
