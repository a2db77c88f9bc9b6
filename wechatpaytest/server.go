package wechatpaytest

import (
	"context"
	"crypto/cipher"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/internal/wire"
)

// Merchant is the credentials of one sandbox merchant. They are generated
// for tests and are worthless outside the sandbox. Its String method
// redacts the private key and the APIv3 key.
type Merchant struct {
	// ID is the merchant ID (mchid), ten digits, unique within its server.
	ID string
	// CertificateSerial is the serial of the merchant API certificate
	// (40 upper-case hex characters); requests must carry it as serial_no.
	CertificateSerial string
	// PrivateKey is the merchant API private key that signs requests.
	PrivateKey *rsa.PrivateKey
	// APIv3Key is the merchant's 32-character APIv3 key, which encrypts
	// the certificates served by /v3/certificates.
	APIv3Key string
	// PublicKeyID is the ID of the merchant's WeChat Pay public key
	// ("PUB_KEY_ID_" and 34 digits); empty unless the server was created
	// with WithPublicKey or PublicKeyOnly.
	PublicKeyID string
	// PublicKey is the merchant's WeChat Pay public key, nil unless
	// PublicKeyID is set.
	PublicKey *rsa.PublicKey
	// APIv2Key is the merchant's 32-character APIv2 key, which signs
	// APIv2 (XML) requests and answers such as /risk/getcertficates.
	APIv2Key string
}

// String describes m without its private key and APIv3 key.
func (m Merchant) String() string {
	return fmt.Sprintf("wechatpaytest.Merchant{ID: %q, CertificateSerial: %q, PrivateKey: %s, APIv3Key: %s, APIv2Key: %s, PublicKeyID: %q}",
		m.ID, m.CertificateSerial, redacted(m.PrivateKey != nil), redacted(m.APIv3Key != ""), redacted(m.APIv2Key != ""), m.PublicKeyID)
}

// GoString is String, so that %#v does not print secrets either.
func (m Merchant) GoString() string { return m.String() }

func redacted(set bool) string {
	if set {
		return "[redacted]"
	}
	return "[unset]"
}

// An Option configures a Server created by NewServer.
type Option func(*options)

type options struct {
	publicKey     bool
	publicKeyOnly bool
	addr          string
	clockOffset   time.Duration // WithClockOffset (clock.go)
	wholeClock    bool

	// The simulator (sim.go, deliver.go, refund.go, state.go).
	answerTimeout time.Duration
	retries       []time.Duration
	retriesSet    bool
	duplicate     bool
	onDelivery    func(Delivery)
	refundDelay   time.Duration
	statePath     string
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

	ts      *httptest.Server
	opts    options
	mux     *http.ServeMux // business routes registered with Handle
	closing chan struct{}  // closed by Close; ends hanging handlers
	once    sync.Once

	caCert *x509.Certificate
	caKey  *rsa.PrivateKey
	roots  *x509.CertPool

	mu        sync.Mutex // guards merchants and each merchant's certs and signing
	merchants map[string]*merchant
	defaultID string

	certFault   atomic.Int64 // CertFault
	certDelay   atomic.Int64 // time.Duration
	fault       atomic.Int64 // Fault
	clockOffset atomic.Int64 // time.Duration
	certHits    atomic.Int64
	requests    atomic.Int64

	x extras // APIv2, bills, media, sensitive fields, path counts (extras.go)

	cmp   complaintDesk  // complaints 2.0 (complaints.go)
	ebill encryptedBills // encrypted fund-flow bills (encbill.go)

	sims         *http.ServeMux // the simulator's built-in routes (routes.go)
	sim          sim            // orders, refunds, faults, deliveries
	profit       profitSharing  // profit sharing (profitsharing.go)
	life         lifecycle      // callback and refund goroutines, stopped by Close
	cbClient     *http.Client   // delivers callbacks
	cbTransport  *http.Transport
	savedDefault *savedMerchant // the default merchant, for the state file
}

// merchant is the server-side state of one merchant.
type merchant struct {
	info      Merchant        // immutable after creation
	aead      cipher.AEAD     // from info.APIv3Key
	publicKey *rsa.PrivateKey // private half of info.PublicKey; nil unless enabled
	downloads atomic.Int64    // authenticated certificate endpoint requests

	// Guarded by Server.mu.
	certs   []*platformCert // listed by the certificate endpoint, oldest first
	signing *platformCert   // signs responses; nil in PublicKeyOnly mode
}

// platformCert is a platform certificate and its private key. It is
// immutable; ExpireCertificate replaces it.
type platformCert struct {
	cert   *x509.Certificate
	key    *rsa.PrivateKey
	serial string
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
	s := &Server{
		opts:      o,
		mux:       http.NewServeMux(),
		closing:   make(chan struct{}),
		merchants: make(map[string]*merchant),
	}
	s.clockOffset.Store(int64(o.clockOffset))
	s.sim.init()
	s.newRootCA()
	var saved *savedMerchant
	if o.statePath != "" {
		var err error
		if saved, err = s.loadState(); err != nil {
			panic("wechatpaytest: " + err.Error())
		}
	}
	s.defaultID = s.addMerchant(saved).ID
	if o.statePath != "" {
		s.savedDefault = s.saveMerchant(s.defaultID)
		s.sim.mu.Lock()
		s.saveLocked()
		err := s.sim.saveErr
		s.sim.mu.Unlock()
		if err != nil {
			panic("wechatpaytest: state file: " + err.Error())
		}
	}
	s.life.ctx, s.life.cancel = context.WithCancel(context.Background())
	s.cbTransport = http.DefaultTransport.(*http.Transport).Clone()
	s.cbClient = &http.Client{
		Transport:     s.cbTransport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	s.registerSimRoutes()

	s.ts = httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
	if o.addr != "" {
		l, err := net.Listen("tcp", o.addr)
		if err != nil {
			panic(fmt.Sprintf("wechatpaytest: listen on %s: %v", o.addr, err))
		}
		s.ts.Listener.Close()
		s.ts.Listener = l
	}
	s.ts.Start()
	s.URL = s.ts.URL
	return s
}

// Close shuts down the server and waits until all requests have finished
// and every goroutine it started has returned: callback deliveries still
// waiting for a retry and refunds still PROCESSING are abandoned. Requests
// held by CertHang, SetCertDelay or RouteTimeout are released first.
func (s *Server) Close() {
	s.once.Do(func() { close(s.closing) })
	s.life.stop()
	s.ts.Close()
	s.cbTransport.CloseIdleConnections()
}

// Merchant returns the default merchant, created by NewServer.
func (s *Server) Merchant() Merchant { return s.merchant(s.defaultID).info }

// AddMerchant creates a merchant with its own ID, merchant key, APIv3 key
// and platform certificate (and WeChat Pay public key, if enabled) and
// returns its credentials. The merchant's keys are pairwise distinct.
func (s *Server) AddMerchant() Merchant { return s.addMerchant(nil) }

// addMerchant creates a merchant, with the identity and keys of saved if
// it is not nil.
func (s *Server) addMerchant(saved *savedMerchant) Merchant {
	m := &merchant{}
	m.info.CertificateSerial = newSerialHex()
	m.info.PrivateKey = takeKey()
	m.info.APIv3Key = randomText(32)
	m.info.APIv2Key = randomText(32)
	if saved != nil {
		k, err := parseSavedKey(saved.PrivateKey)
		if err != nil || len(saved.APIv3Key) != 32 || saved.ID == "" {
			panic(fmt.Sprintf("wechatpaytest: state file %s: bad merchant", s.opts.statePath))
		}
		m.info.ID, m.info.CertificateSerial, m.info.PrivateKey = saved.ID, saved.CertificateSerial, k
		m.info.APIv3Key, m.info.APIv2Key = saved.APIv3Key, saved.APIv2Key
	}
	aead, err := wire.NewAEAD(m.info.APIv3Key)
	if err != nil {
		panic(err) // a 32-byte key always works
	}
	m.aead = aead
	avoid := []*rsa.PrivateKey{m.info.PrivateKey}
	if s.opts.publicKey {
		m.publicKey = takeKey(avoid...)
		m.info.PublicKeyID = "PUB_KEY_ID_" + randomDigits(34)
		if saved != nil && saved.PublicKeyID != "" {
			if k, err := parseSavedKey(saved.PublicKey); err == nil {
				m.publicKey, m.info.PublicKeyID = k, saved.PublicKeyID
			}
		}
		avoid = append(avoid, m.publicKey)
		m.info.PublicKey = &m.publicKey.PublicKey
	}
	if !s.opts.publicKeyOnly {
		pc := s.issue(takeKey(avoid...))
		m.certs = []*platformCert{pc}
		m.signing = pc
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	for m.info.ID == "" || s.merchants[m.info.ID] != nil {
		m.info.ID = "19" + randomDigits(8)
	}
	s.merchants[m.info.ID] = m
	return m.info
}

// saveMerchant returns merchant id in the state file's form.
func (s *Server) saveMerchant(id string) *savedMerchant {
	m := s.merchant(id)
	der, err := x509.MarshalPKCS8PrivateKey(m.info.PrivateKey)
	if err != nil {
		panic(err) // an RSA key always marshals
	}
	sm := &savedMerchant{ID: m.info.ID, CertificateSerial: m.info.CertificateSerial, PrivateKey: der,
		APIv3Key: m.info.APIv3Key, APIv2Key: m.info.APIv2Key}
	if m.publicKey != nil {
		if sm.PublicKey, err = x509.MarshalPKCS8PrivateKey(m.publicKey); err != nil {
			panic(err)
		}
		sm.PublicKeyID = m.info.PublicKeyID
	}
	return sm
}

// Config returns the configuration of the default merchant; see
// MerchantConfig.
func (s *Server) Config() wechatpay.Config { return s.MerchantConfig(s.defaultID) }

// MerchantConfig returns a configuration for merchant id that talks to the
// sandbox: the merchant's ID, certificate serial, private key and APIv3
// key, BaseURL set to s.URL and Base set to an *http.Transport connected
// to the server (closed with it). PublicKeyID and PublicKey are set only
// when the server was created with PublicKeyOnly; with WithPublicKey they
// are available from the Merchant.
func (s *Server) MerchantConfig(id string) wechatpay.Config {
	m := s.merchant(id)
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

// Roots returns a pool holding the sandbox root CA, which issued every
// platform certificate of the server.
func (s *Server) Roots() *x509.CertPool { return s.roots.Clone() }

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
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

type merchantIDKey struct{}

// MerchantIDFrom returns the ID of the authenticated merchant inside a
// handler registered with Handle, or "" if ctx does not come from one.
func MerchantIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(merchantIDKey{}).(string)
	return id
}

// merchant returns the merchant with the given ID, or panics.
func (s *Server) merchant(id string) *merchant {
	s.mu.Lock()
	m := s.merchants[id]
	s.mu.Unlock()
	if m == nil {
		panic(fmt.Sprintf("wechatpaytest: no merchant %q", id))
	}
	return m
}

// lookup returns the merchant with the given ID, or nil.
func (s *Server) lookup(id string) *merchant {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.merchants[id]
}

// now is the sandbox clock, used for response timestamps.
func (s *Server) now() time.Time {
	return time.Now().Add(time.Duration(s.clockOffset.Load()))
}

// wait returns true after d, or false as soon as ctx is done or the server
// is closing. A negative d waits only for the latter.
func (s *Server) wait(ctx context.Context, d time.Duration) bool {
	var elapsed <-chan time.Time
	if d >= 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		elapsed = t.C
	}
	select {
	case <-elapsed:
		return true
	case <-ctx.Done():
		return false
	case <-s.closing:
		return false
	}
}

// SetClockOffset sets the sandbox clock to the real time plus d. Responses
// are signed with timestamps of the sandbox clock (their signatures stay
// valid), so an offset beyond 5 minutes makes clients see skewed
// responses. Request timestamps are still checked against the real time,
// so that a skewed response can be observed at all.
func (s *Server) SetClockOffset(d time.Duration) { s.clockOffset.Store(int64(d)) }

// Requests returns how many authenticated requests reached routes
// registered with Handle.
func (s *Server) Requests() int { return int(s.requests.Load()) }

// CertificateDownloads returns how many requests reached the certificate
// endpoints, for all merchants and with any outcome (including failed
// authentication and injected faults).
func (s *Server) CertificateDownloads() int { return int(s.certHits.Load()) }

// MerchantCertificateDownloads returns how many authenticated requests of
// merchant id reached the certificate endpoints, whatever the outcome.
func (s *Server) MerchantCertificateDownloads(id string) int {
	return int(s.merchant(id).downloads.Load())
}
