package middleware

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// Event types of the notifications a Router most often routes
// (docs/protocol.md §6, §12).
const (
	EventTransactionSuccess = "TRANSACTION.SUCCESS"
	EventRefundSuccess      = "REFUND.SUCCESS"
	EventRefundAbnormal     = "REFUND.ABNORMAL"
	EventRefundClosed       = "REFUND.CLOSED"
)

// ErrUnhandledEvent is reported to Router.ErrorHandler for a notification
// whose event type has no handler.
var ErrUnhandledEvent = errors.New("wechatpay/middleware: no handler for the notification's event type")

// A Router is the handler behind Notifications that dispatches each
// verified notification to the handler registered for its event_type,
// with its resource decoded into the product package's type (On):
//
//	var rt middleware.Router
//	middleware.On(&rt, middleware.EventTransactionSuccess, func(ctx context.Context, n *middleware.Notification, tx *payments.Transaction) error {
//		return orders.MarkPaid(ctx, tx.OutTradeNo, tx.TransactionID, tx.Amount.Total)
//	})
//	middleware.On(&rt, middleware.EventRefundSuccess, func(ctx context.Context, n *middleware.Notification, rf *payments.RefundNotification) error {
//		return orders.MarkRefunded(ctx, rf.OutRefundNo, rf.Amount.Refund)
//	})
//	mux.Handle("POST /wechatpay/notify", middleware.Notifications(cfg)(&rt))
//
// A typed handler returning nil answers 204 (received); returning an
// error answers 500, so that WeChat Pay delivers the notification again
// later. A notification whose event type has no handler goes to
// Unhandled.
//
// The zero value is a Router with no handlers. Register every handler
// before serving; a Router is then safe for concurrent use.
type Router struct {
	handlers map[string]http.Handler

	// Unhandled answers a notification whose event type has no handler.
	// Nil means 501 with WeChat Pay's failure JSON, so that WeChat Pay
	// delivers it again later (for about 24 hours) while a handler is
	// deployed; to acknowledge and drop such notifications instead, set
	//
	//	http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	Unhandled http.Handler

	// ErrorHandler, if set, receives the error of a typed handler, of
	// decoding a notification's resource, or ErrUnhandledEvent (wrapped,
	// with the event type), before the failure answer is written. It
	// must not write to the response.
	ErrorHandler func(r *http.Request, err error)
}

// Handle registers h for notifications of eventType, for event types the
// Router has no typed form for; h finds the notification with
// NotificationFrom. It panics if eventType is empty or already has a
// handler, as http.ServeMux does.
func (rt *Router) Handle(eventType string, h http.Handler) {
	if eventType == "" {
		panic("wechatpay/middleware: Router.Handle: empty event type")
	}
	if h == nil {
		panic("wechatpay/middleware: Router.Handle: nil handler for " + eventType)
	}
	if _, dup := rt.handlers[eventType]; dup {
		panic("wechatpay/middleware: Router.Handle: a handler for " + eventType + " is already registered")
	}
	if rt.handlers == nil {
		rt.handlers = make(map[string]http.Handler)
	}
	rt.handlers[eventType] = h
}

// OnTransaction registers f for payment notifications of eventType (such
// as EventTransactionSuccess), with their resource decoded into the
// middleware's own (deprecated) Transaction. New code uses On with
// payments.Transaction.
func (rt *Router) OnTransaction(eventType string, f func(ctx context.Context, n *Notification, tx *Transaction) error) {
	if f == nil {
		panic("wechatpay/middleware: Router.OnTransaction: nil func for " + eventType)
	}
	rt.Handle(eventType, typed(rt, (*Notification).Transaction, f))
}

// OnRefund registers f for refund notifications of eventType
// (EventRefundSuccess, EventRefundAbnormal, EventRefundClosed), with
// their resource decoded into the middleware's own (deprecated) Refund.
// New code uses On with payments.RefundNotification.
func (rt *Router) OnRefund(eventType string, f func(ctx context.Context, n *Notification, rf *Refund) error) {
	if f == nil {
		panic("wechatpay/middleware: Router.OnRefund: nil func for " + eventType)
	}
	rt.Handle(eventType, typed(rt, (*Notification).Refund, f))
}

// On registers f for notifications of eventType on rt, with their
// resource decoded into a fresh T (by Notification.Decode). T is any
// payload type: product packages (transfers, profit sharing, complaints,
// combine orders) define their own, and the Router needs to import none
// of them. A payload that does not decode is answered 400 and reaches
// ErrorHandler; f returning an error answers 500, so that WeChat Pay
// delivers the notification again later; nil answers 204.
//
//	middleware.On(&rt, "MCHTRANSFER.BILL.FINISHED", func(ctx context.Context, n *middleware.Notification, b *transfers.Bill) error {
//		return ledger.Settle(ctx, b.OutBillNo, b.State)
//	})
//
// It panics if f is nil, eventType is empty or already has a handler.
func On[T any](rt *Router, eventType string, f func(ctx context.Context, n *Notification, payload *T) error) {
	if f == nil {
		panic("wechatpay/middleware: On: nil func for " + eventType)
	}
	decode := func(n *Notification) (*T, error) {
		v := new(T)
		if err := n.Decode(v); err != nil {
			return nil, err
		}
		return v, nil
	}
	rt.Handle(eventType, typed(rt, decode, f))
}

// typed adapts a func taking a decoded resource to an http.Handler.
func typed[T any](rt *Router, decode func(*Notification) (*T, error), f func(context.Context, *Notification, *T) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := NotificationFrom(r.Context()) // ServeHTTP checked it
		v, err := decode(n)
		if err != nil {
			rt.report(r, fmt.Errorf("notification %s (%s): %w", truncate(n.ID, 64), truncate(n.EventType, 64), err))
			Fail(w, http.StatusBadRequest, "unexpected resource")
			return
		}
		if err := f(r.Context(), n, v); err != nil {
			rt.report(r, fmt.Errorf("notification %s (%s): handler: %w", truncate(n.ID, 64), truncate(n.EventType, 64), err))
			Fail(w, http.StatusInternalServerError, "notification not processed")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func (rt *Router) report(r *http.Request, err error) {
	if rt.ErrorHandler != nil {
		rt.ErrorHandler(r, err)
	}
}

// ServeHTTP dispatches the notification that Notifications put in r's
// context. A request without one (the Router mounted without
// Notifications in front) is answered 500 and reaches no handler.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n, ok := NotificationFrom(r.Context())
	if !ok || n == nil {
		rt.report(r, errors.New("wechatpay/middleware: Router reached without a verified notification; mount it behind Notifications"))
		Fail(w, http.StatusInternalServerError, "not verified")
		return
	}
	if h, ok := rt.handlers[n.EventType]; ok {
		h.ServeHTTP(w, r)
		return
	}
	rt.report(r, fmt.Errorf("%w: %q (notification %s)", ErrUnhandledEvent, truncate(n.EventType, 64), truncate(n.ID, 64)))
	if rt.Unhandled != nil {
		rt.Unhandled.ServeHTTP(w, r)
		return
	}
	Fail(w, http.StatusNotImplemented, "no handler for event type")
}
