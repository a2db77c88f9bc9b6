package wechatpaytest

import (
	"net/http"
	"slices"
)

// The route table: every built-in APIv3 route, and the one place where a
// part of WeChat Pay mounts its routes.
//
// A part is a type in a file of its own (orders.go, bills.go,
// profitsharing.go, ...) with its lock beside the state it guards and a
// routes method. To add one: give Server a field for it, create it in
// assemble (server.go) from the services it needs, and list its routes in
// routeTable. Exported controls a test needs (such as
// SetProfitSharingNotifyURL) are one-line Server methods that delegate to
// the part; keep Server at 40 methods or fewer. The services a part
// reaches:
//
//   - the request: handlers get the authenticated merchant's ID from
//     MerchantIDFrom(r.Context()) and the body (already read, bounded and
//     authenticated) from bodyOf(r);
//   - answers: a signed or failable route writes plain JSON (writeJSON,
//     writeSimError, paramError) and the core signs it; a raw route signs
//     with core.writeSigned or core.writeError;
//   - merchants: merchants.get(id) (panics on an unknown one, for
//     controls) and merchants.lookup(id) (nil, for requests);
//   - orders: orders.lookup(owner, outTradeNo) and
//     orders.lookupTransaction(id) return copies;
//   - callbacks: delivery.send(notice{...}) signs, encrypts and delivers
//     on WeChat Pay's retry schedule from a goroutine the server owns,
//     recorded in Deliveries;
//   - encrypted fields: sensitiveFields.decrypt(r, ciphertext) decrypts
//     with the key the request's Wechatpay-Serial names (ErrRequestSerial
//     otherwise), sensitiveFields.encrypt encrypts for the merchant;
//   - time: simClock.now() for business times, simClock.sleep for delays,
//     lifecycle.goOwned for work that outlives the request (tests inject
//     a fake clock with withClock).

// routeKind says how the core wraps a route's handler. Kinds combine
// with |.
type routeKind uint8

const (
	// signed, the default: what the handler writes is buffered and
	// signed, subject to SetFault, as for a route registered with Handle.
	// A POST, PUT or PATCH with a body must say Content-Type:
	// application/json, or gets 400 INVALID_REQUEST.
	signed routeKind = 0
	// failable: FailRoute (and /sandbox/faults) may queue faults for the
	// route.
	failable routeKind = 1 << iota
	// raw: the handler writes its own answer, signed with
	// core.writeSigned or, like bill files, unsigned.
	raw
	// multipartBody: the body is multipart/form-data (uploads), not JSON.
	multipartBody
)

// route is one built-in APIv3 route. pattern is an http.ServeMux pattern
// with a method.
type route struct {
	pattern string
	kind    routeKind
	handler http.HandlerFunc
}

// routeTable lists the built-in routes of s, one line per part.
func routeTable(s *Server) []route {
	return slices.Concat(
		s.orders.routes(),        // orders.go: prepay, query, close
		s.orders.refundRoutes(),  // refunds.go
		s.bills.routes(),         // bills.go, tradebill.go
		s.media.routes(),         // media.go
		s.profit.routes(),        // profitsharing.go
		s.tr.routes(),            // transfers.go
		s.combine.routes(),       // combine.go
		s.orders.codeRoutes(),    // codepay.go
		s.complaints.routes(),    // complaints.go
		s.ebills.routes(),        // encbill.go
		fapiaoUploads{}.routes(), // uploads.go
		s.control.routes(),       // control.go: /sandbox/pay, /sandbox/faults, /sandbox/notify
	)
}
