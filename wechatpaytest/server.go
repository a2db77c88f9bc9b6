package wechatpaytest

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/wxpaykit/wechatpay"
)

// An Option configures a Server created by NewServer.
type Option func(*options)

type options struct {
	publicKey     bool
	publicKeyOnly bool
	migrating     bool
	addr          string
	clockOffset   time.Duration // WithClockOffset (clock.go)
	wholeClock    bool
	clock         clock // withClock (clock.go); nil means the real clock

	answerTimeout time.Duration // delivery.go
	retries       []time.Duration
	retriesSet    bool
	duplicate     bool
	onDelivery    func(Delivery)
	refundDelay   time.Duration // refunds.go
	statePath     string        // state.go
}

// WithPublicKey gives each merchant a WeChat Pay public key (a PUB_KEY_ID_
// and a key pair) in addition to its platform certificates, as for a
// merchant migrating to public-key mode. A request whose Wechatpay-Serial
// header names the public key ID is answered signed with the public key;
// other requests are answered signed with the platform certificate.
func WithPublicKey() Option { return func(o *options) { o.publicKey = true } }

// PublicKeyOnly implies WithPublicKey and gives merchants no platform
// certificates, as WeChat Pay does for merchants registered since late
// 2024: the certificate endpoints answer 404 RESOURCE_NOT_EXISTS, and every
// response is signed with the public key.
func PublicKeyOnly() Option {
	return func(o *options) { o.publicKey, o.publicKeyOnly = true, true }
}

// Migrating implies WithPublicKey and plays a merchant in the middle of
// its switch to public-key mode: callback notifications are signed in
// turn with the WeChat Pay public key and with the platform certificate,
// the first with the public key, as WeChat Pay signs a growing share of a
// migrating merchant's callbacks with the public key (docs/protocol.md
// §3.1); the merchant must pick the key each callback's Wechatpay-Serial
// names. Answers are signed as with WithPublicKey. NotifyWithPublicKey
// still forces the public key.
func Migrating() Option {
	return func(o *options) { o.publicKey, o.migrating = true, true }
}

// WithAddr makes the server listen on addr, for example "127.0.0.1:8080",
// instead of a random loopback port. NewServer panics if it cannot listen.
func WithAddr(addr string) Option { return func(o *options) { o.addr = addr } }

// A Server is a WeChat Pay APIv3 sandbox listening on a loopback port.
// All of its methods are safe for concurrent use, also while it serves
// requests. Methods taking a merchant ID panic if the server has no such
// merchant; the certificate methods also panic on a serial the merchant
// does not have, since both are mistakes in the test.
type Server struct {
	// URL is the base URL of the sandbox, of the form http://ipaddr:port
	// with no trailing slash; use it as the merchant's BaseURL.
	URL string

	ts   *httptest.Server
	opts options

	// Server is a façade: each part of WeChat Pay is a type of its own,
	// with its lock beside the state it guards, in the file named here.

	clock      *simClock        // clock.go
	life       *lifecycle       // lifecycle.go: background goroutines, Close
	merchants  *merchants       // merchants.go
	ca         *authority       // authority.go: root CA, platform certificates, public keys
	faults     *faults          // faults.go
	stats      *stats           // stats.go
	core       *core            // core.go, authenticate.go, answer.go: dispatch and signed answers
	notes      *notifier        // notify.go: building notifications
	delivery   *delivery        // delivery.go: sending them on the retry schedule
	orders     *orders          // orders.go, prepay.go, refunds.go, tradebill.go, state.go
	bills      *bills           // bills.go
	media      *mediaStore      // media.go
	fields     *sensitiveFields // sensitive.go
	profit     *profitSharing   // profitsharing.go
	tr         *transfers       // transfers.go, transfers_page.go: 商家转账
	combine    *combineOrders   // combine.go (payment codes are orders: codepay.go)
	complaints *complaintDesk   // complaints.go
	ebills     *encryptedBills  // encbill.go
	v2         *apiV2           // apiv2.go
	control    *control         // control.go
}

// NewServer starts a sandbox with one merchant, its default merchant, on a
// loopback port (or on the address given by WithAddr). Call Close when done.
func NewServer(opts ...Option) *Server {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.answerTimeout <= 0 {
		o.answerTimeout = answerTimeout
	}
	if !o.retriesSet {
		o.retries = RetrySchedule()
	}
	if o.refundDelay <= 0 {
		o.refundDelay = time.Second
	}
	ts := httptest.NewUnstartedServer(nil)
	if o.addr != "" {
		l, err := net.Listen("tcp", o.addr)
		if err != nil {
			panic(fmt.Sprintf("wechatpaytest: listen on %s: %v", o.addr, err))
		}
		ts.Listener.Close()
		ts.Listener = l
	}
	s := &Server{URL: "http://" + ts.Listener.Addr().String(), ts: ts, opts: o}
	assemble(s)
	loadDefaultMerchant(s)
	ts.Config.Handler = s.core
	ts.Start()
	if ts.URL != s.URL {
		panic("wechatpaytest: the server listens on " + ts.URL + ", not " + s.URL)
	}
	return s
}

// assemble creates the parts of s and mounts their routes, before s
// serves.
func assemble(s *Server) {
	o := &s.opts
	s.clock = newSimClock(o)
	s.life = newLifecycle()
	s.merchants = newMerchants()
	s.ca = newAuthority(o)
	s.faults = newFaults()
	s.stats = &stats{}
	s.v2 = &apiV2{merchants: s.merchants, ca: s.ca, stats: s.stats}
	s.core = &core{clock: s.clock, life: s.life, merchants: s.merchants, ca: s.ca, faults: s.faults,
		stats: s.stats, v2: s.v2, mux: http.NewServeMux()}
	s.notes = &notifier{clock: s.clock, merchants: s.merchants, ca: s.ca, mixed: o.migrating}
	s.delivery = newDelivery(o, s.clock, s.life, s.notes)
	s.orders = newOrders(o, s.clock, s.life, s.delivery, s.URL)
	s.bills = &bills{core: s.core, orders: s.orders, url: s.URL}
	s.media = &mediaStore{}
	s.fields = &sensitiveFields{merchants: s.merchants, ca: s.ca}
	s.profit = &profitSharing{merchants: s.merchants, trades: s.orders, delivery: s.delivery, fields: s.fields}
	s.tr = newTransfers(s)
	s.combine = &combineOrders{clock: s.clock, delivery: s.delivery}
	s.complaints = &complaintDesk{url: s.URL, clock: s.clock, trades: s.orders,
		delivery: s.delivery, fields: s.fields, core: s.core}
	s.ebills = &encryptedBills{url: s.URL, clock: s.clock, core: s.core, fields: s.fields}
	s.control = &control{core: s.core, orders: s.orders, faults: s.faults, notes: s.notes, combine: s.combine}
	s.core.cashier = &cashier{orders: s.orders, delivery: s.delivery, url: s.URL, transfer: s.tr}
	s.core.mount(routeTable(s))
}

// loadDefaultMerchant loads the state file, if any, and registers the
// default merchant, before s serves.
func loadDefaultMerchant(s *Server) {
	var saved *savedMerchant
	if s.opts.statePath != "" {
		var err error
		if saved, err = s.orders.load(); err != nil {
			panic("wechatpaytest: " + err.Error())
		}
	}
	def := s.merchants.add(func() *merchant { return newMerchant(s.ca, saved, s.opts.statePath) })
	s.merchants.defaultID = def.info.ID
	if s.opts.statePath != "" {
		if err := s.orders.start(def.saved()); err != nil {
			panic("wechatpaytest: state file: " + err.Error())
		}
	}
}

// Close shuts down the server and waits until all requests have finished
// and every goroutine it started has returned: callback deliveries still
// waiting for a retry and refunds still PROCESSING are abandoned. Requests
// held by CertHang, SetCertDelay or RouteTimeout are released first.
func (s *Server) Close() {
	s.life.stop()
	s.ts.Close()
	s.delivery.close()
}

// Merchant returns the default merchant, created by NewServer.
func (s *Server) Merchant() Merchant { return s.merchants.get(s.merchants.defaultID).info }

// AddMerchant creates a merchant with its own ID, merchant key, APIv3 key
// and platform certificate (and WeChat Pay public key, if enabled) and
// returns its credentials. The merchant's keys are pairwise distinct.
func (s *Server) AddMerchant() Merchant {
	return s.merchants.add(func() *merchant { return newMerchant(s.ca, nil, s.opts.statePath) }).info
}

// Config returns the configuration of the default merchant; see
// MerchantConfig.
func (s *Server) Config() wechatpay.Config { return s.MerchantConfig(s.merchants.defaultID) }

// MerchantConfig returns a configuration for merchant id that talks to the
// sandbox: the merchant's ID, certificate serial, private key and APIv3
// key, BaseURL set to s.URL and Base set to an *http.Transport connected
// to the server (closed with it). PublicKeyID and PublicKey are set only
// when the server was created with PublicKeyOnly; with WithPublicKey they
// are available from the Merchant.
func (s *Server) MerchantConfig(id string) wechatpay.Config {
	m := s.merchants.get(id)
	c := wechatpay.Config{
		MerchantID:        m.info.ID,
		CertificateSerial: m.info.CertificateSerial,
		PrivateKey:        m.info.PrivateKey,
		APIv3Key:          m.info.APIv3Key,
		BaseURL:           s.URL,
		Base:              s.ts.Client().Transport,
	}
	if s.opts.publicKeyOnly {
		c.PublicKeyID = m.info.PublicKeyID
		c.PublicKey = m.info.PublicKey
	}
	return c
}

// Handle registers h for a route. pattern is a [http.ServeMux] pattern
// such as "GET /v3/merchant/fund/balance/{type}"; r.PathValue works in
// h. A route registered with Handle takes precedence over every built-in
// route (listed in the package documentation), so a test can replace any
// of them. Requests are authenticated before h runs (MerchantIDFrom
// tells h which merchant called); what h writes (status, headers and
// body) is buffered, then sent with WeChat Pay's signature headers,
// subject to SetFault. A body the handler writes without a Content-Type
// is sent as application/json. Handle panics if pattern conflicts with an
// earlier one registered with Handle, as ServeMux does. Requests no route
// matches get a signed 404 NOT_FOUND (or 405) error JSON.
func (s *Server) Handle(pattern string, h http.Handler) { s.core.mux.Handle(pattern, h) }
