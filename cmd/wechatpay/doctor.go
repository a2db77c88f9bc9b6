package main

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/internal/wire"
)

var doctorHelp = help{
	synopsis: "doctor [-timeout D] [credential flags]",
	text: `Checks the configured merchant's setup step by step and says how to fix
each problem found:

  - each API host (the main and backup hosts of the base URL's region, or
    the custom base URL alone): DNS, TCP connect, TLS handshake and time to
    first byte, timed;
  - this machine's clock against the Date header of WeChat Pay's answer
    (the cause of most "timestamp expired" errors);
  - a signed GET /v3/certificates: whether the private key and certificate
    serial are accepted, and what a SIGN_ERROR says;
  - whether the APIv3 key decrypts the platform certificates, and whether
    the answer's signature verifies;
  - certificate or public-key mode, and the certificates' expiry dates.

Exit status 0 when every check passes, 1 when any fails.`,
	example: `wechatpay doctor -sandbox
wechatpay doctor -mchid 1900000001 -serial 3775B6A45ACD588826D15E583A95F5DD12345678 -key apiclient_key.pem -apiv3-key "$WECHATPAY_APIV3_KEY"`,
}

// doctor runs the checks of the doctor command.
type doctor struct {
	a       *app
	cfg     wechatpay.Config
	timeout time.Duration
	base    http.RoundTripper // nil means a fresh transport per host check
	failed  int
	date    time.Time     // WeChat Pay's clock, from the first Date header seen
	offset  time.Duration // WeChat Pay's clock minus ours
	clockOK bool          // whether the offset is known
}

func (a *app) doctor(name string, args []string) error {
	fs := a.newFlagSet(name, doctorHelp)
	creds := addCredFlags(fs, needSigner|needKeys)
	timeout := fs.Duration("timeout", 10*time.Second, "give up on each step after this long")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if *timeout <= 0 {
		return usagef("-timeout must be positive")
	}
	s, err := creds.load(a, name)
	if err != nil {
		return err
	}
	defer s.close()
	d := &doctor{a: a, cfg: s.cfg, timeout: *timeout, base: s.cfg.Base}
	d.run()
	if d.failed > 0 {
		return &exitError{code: exitFailure, msg: fmt.Sprintf("wechatpay doctor: %d check(s) failed; each says how to fix it above.", d.failed)}
	}
	fmt.Fprintln(a.stdout, "\nAll checks passed.")
	return nil
}

// line prints one check's outcome: status ok, WARN, FAIL or skip, a
// short name, what was found, and for a problem, its fix.
func (d *doctor) line(status, name, found, fix string) {
	if status == "FAIL" {
		d.failed++
	}
	fmt.Fprintf(d.a.stdout, "%-4s  %-22s %s\n", status, name, found)
	if fix != "" {
		fmt.Fprintf(d.a.stdout, "      %-22s fix: %s\n", "", fix)
	}
}

func (d *doctor) run() {
	fmt.Fprintf(d.a.stdout, "wechatpay doctor: merchant %s, certificate serial %s, base URL %s\n\n", d.cfg.MerchantID, d.cfg.CertificateSerial, d.cfg.BaseURL)
	u, err := url.Parse(d.cfg.BaseURL)
	if err != nil {
		d.line("FAIL", "base URL", err.Error(), "pass -base-url https://api.mch.weixin.qq.com (or leave it unset)")
		return
	}
	for _, h := range regionHosts(u) {
		d.checkHost(u.Scheme, h.host, h.role)
	}
	d.checkClock()
	d.checkSigned(u)
}

type roleHost struct{ role, host string }

// regionHosts returns the hosts worth checking for a base URL: WeChat
// Pay's main and backup hosts of its region (docs/protocol.md §11), or a custom
// base URL's host alone.
func regionHosts(u *url.URL) []roleHost {
	if u.Scheme == "https" && (u.Port() == "" || u.Port() == "443") {
		switch strings.ToLower(u.Hostname()) {
		case "api.mch.weixin.qq.com", "api2.mch.weixin.qq.com":
			return []roleHost{{"main", "api.mch.weixin.qq.com"}, {"backup", "api2.mch.weixin.qq.com"}}
		case "apihk.mch.weixin.qq.com":
			return []roleHost{{"global", "apihk.mch.weixin.qq.com"}, {"backup", "api.mch.weixin.qq.com"}}
		case "api.wechatpay.cn", "api2.wechatpay.cn":
			return []roleHost{{"main", "api.wechatpay.cn"}, {"backup", "api2.wechatpay.cn"}}
		}
	}
	return []roleHost{{"API", u.Host}}
}

// hostTimes are the moments of one request's phases.
type hostTimes struct {
	mu                       sync.Mutex
	start                    time.Time
	dnsStart, dnsDone        time.Time
	dnsErr                   error
	connStart, connDone      time.Time
	connErr                  error
	tlsStart, tlsDone        time.Time
	tlsErr                   error
	firstByte                time.Time
	dnsUsed, tlsUsed, dialed bool
}

func (ht *hostTimes) trace() *httptrace.ClientTrace {
	at := func(f func()) { ht.mu.Lock(); f(); ht.mu.Unlock() }
	return &httptrace.ClientTrace{
		DNSStart: func(httptrace.DNSStartInfo) { at(func() { ht.dnsStart, ht.dnsUsed = time.Now(), true }) },
		DNSDone:  func(i httptrace.DNSDoneInfo) { at(func() { ht.dnsDone, ht.dnsErr = time.Now(), i.Err }) },
		ConnectStart: func(string, string) {
			at(func() {
				if !ht.dialed {
					ht.connStart, ht.dialed = time.Now(), true
				}
			})
		},
		ConnectDone: func(_, _ string, err error) {
			at(func() {
				if ht.connDone.IsZero() || ht.connErr != nil {
					ht.connDone, ht.connErr = time.Now(), err
				}
			})
		},
		TLSHandshakeStart: func() { at(func() { ht.tlsStart, ht.tlsUsed = time.Now(), true }) },
		TLSHandshakeDone: func(_ tls.ConnectionState, err error) {
			at(func() { ht.tlsDone, ht.tlsErr = time.Now(), err })
		},
		GotFirstResponseByte: func() { at(func() { ht.firstByte = time.Now() }) },
	}
}

func ms(d time.Duration) string {
	if d < 10*time.Millisecond {
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}

// checkHost times DNS, TCP, TLS and the first byte of an unsigned GET to
// host, and notes WeChat Pay's Date header.
func (d *doctor) checkHost(scheme, host, role string) {
	name := role + " host"
	rt := d.base
	if rt == nil {
		tr := &http.Transport{Proxy: http.ProxyFromEnvironment, DisableKeepAlives: true, ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		rt = tr
	}
	ht := &hostTimes{}
	ctx, cancel := context.WithTimeout(httptrace.WithClientTrace(d.a.ctx, ht.trace()), d.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+host+"/v3/certificates", nil)
	if err != nil {
		d.line("FAIL", name, err.Error(), "check -base-url")
		return
	}
	req.Header.Set("User-Agent", "wechatpay-cli-doctor")
	req.Header.Set("Accept", "application/json")
	ht.start = time.Now()
	resp, err := rt.RoundTrip(req)
	end := time.Now()
	if err == nil {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
	}
	ht.mu.Lock()
	defer ht.mu.Unlock()
	var parts []string
	if ht.dnsUsed && !ht.dnsDone.IsZero() && ht.dnsErr == nil {
		parts = append(parts, "DNS "+ms(ht.dnsDone.Sub(ht.dnsStart)))
	}
	if ht.dialed && !ht.connDone.IsZero() && ht.connErr == nil {
		parts = append(parts, "TCP "+ms(ht.connDone.Sub(ht.connStart)))
	}
	if ht.tlsUsed && !ht.tlsDone.IsZero() && ht.tlsErr == nil {
		parts = append(parts, "TLS "+ms(ht.tlsDone.Sub(ht.tlsStart)))
	}
	if !ht.firstByte.IsZero() {
		from := ht.start
		switch {
		case !ht.tlsDone.IsZero():
			from = ht.tlsDone
		case !ht.connDone.IsZero():
			from = ht.connDone
		}
		parts = append(parts, "first byte "+ms(ht.firstByte.Sub(from)))
	}
	timing := strings.Join(parts, ", ")
	if err != nil {
		found, fix := hostFailure(host, ht, err, d.timeout)
		if timing != "" {
			found += " (" + timing + ")"
		}
		d.line("FAIL", name, host+": "+found, fix)
		return
	}
	d.line("ok", name, fmt.Sprintf("%s: %s; answered HTTP %d", host, timing, resp.StatusCode), "")
	if !d.clockOK {
		if date, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
			// Date has whole seconds: compare with the middle of the
			// exchange, and keep half a second of doubt.
			mid := ht.start.Add(end.Sub(ht.start) / 2)
			d.date, d.offset, d.clockOK = date, date.Add(500*time.Millisecond).Sub(mid), true
		}
	}
}

// hostFailure says at which step a host check failed, and what to do.
func hostFailure(host string, ht *hostTimes, err error, timeout time.Duration) (found, fix string) {
	var dnsErr *net.DNSError
	switch {
	case ht.dnsErr != nil || errors.As(err, &dnsErr):
		return "DNS lookup failed: " + errText(err),
			"this machine cannot resolve " + host + ": check /etc/resolv.conf (or the container's DNS), and that outbound DNS is allowed"
	case ht.connErr != nil:
		return "TCP connect failed: " + errText(ht.connErr),
			"allow outbound TCP to " + host + " port 443 in the firewall or security group, or set HTTPS_PROXY if your network requires a proxy"
	case ht.tlsErr != nil:
		return "TLS handshake failed: " + errText(ht.tlsErr),
			"something between this machine and " + host + " intercepts TLS, or the system CA certificates are missing (install ca-certificates); do not disable verification"
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("no answer within %s", timeout),
			"the network path to " + host + " is blocked or very slow; from outside the mainland use the global host https://apihk.mch.weixin.qq.com (-base-url)"
	}
	return errText(err), "check the network path to " + host
}

func errText(err error) string {
	return strings.TrimPrefix(err.Error(), "wechatpay: ")
}

// checkClock reports this machine's clock against WeChat Pay's.
func (d *doctor) checkClock() {
	if !d.clockOK {
		d.line("skip", "clock", "no Date header from WeChat Pay to compare with", "")
		return
	}
	off := d.offset.Round(time.Second)
	found := fmt.Sprintf("WeChat Pay's Date header is %s; this machine is %s", d.date.UTC().Format(time.RFC3339), describeOffset(off))
	const fix = "set this machine's clock right and keep it right: enable NTP (timedatectl set-ntp true, or chrony); a container takes its host's clock"
	switch abs := max(off, -off); {
	case abs >= 5*time.Minute:
		d.line("FAIL", "clock", found+": WeChat Pay rejects requests more than 5 minutes off (SIGN_ERROR, timestamp expired), and answers look skewed", fix)
	case abs > time.Minute:
		d.line("WARN", "clock", found+": within WeChat Pay's 5 minutes, but drifting", fix)
	default:
		d.line("ok", "clock", found, "")
	}
}

func describeOffset(off time.Duration) string {
	switch {
	case off > 0:
		return off.String() + " behind"
	case off < 0:
		return (-off).String() + " ahead"
	}
	return "in step (within a second)"
}

// checkSigned makes a signed GET of the certificate list and checks what
// it says about the private key, the serial, the APIv3 key and the mode.
func (d *doctor) checkSigned(u *url.URL) {
	path := "/v3/certificates"
	if strings.EqualFold(u.Hostname(), "apihk.mch.weixin.qq.com") {
		path = "/v3/global/certificates"
	}
	signer := &wechatpay.Signer{MerchantID: d.cfg.MerchantID, CertificateSerial: d.cfg.CertificateSerial, Key: d.cfg.PrivateKey}
	auth, err := signer.Authorization(http.MethodGet, path, nil)
	if err != nil {
		d.line("FAIL", "signature", "cannot sign: "+errText(err), "pass a usable -key (the merchant API private key, apiclient_key.pem)")
		return
	}
	ctx, cancel := context.WithTimeout(d.a.ctx, d.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(d.cfg.BaseURL, "/")+path, nil)
	if err != nil {
		d.line("FAIL", "signature", err.Error(), "check -base-url")
		return
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "wechatpay-cli-doctor")
	if d.cfg.PublicKeyID != "" {
		req.Header.Set(wire.HeaderSerial, d.cfg.PublicKeyID)
	}
	rt := d.base
	if rt == nil {
		tr := &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		rt = tr
	}
	start := time.Now()
	resp, err := rt.RoundTrip(req)
	if err != nil {
		d.line("FAIL", "signed request", fmt.Sprintf("GET %s: %s", path, errText(err)), "see the host checks above")
		d.line("skip", "APIv3 key", "not checked: no certificate download", "")
		return
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	took := time.Since(start)
	if err != nil {
		d.line("FAIL", "signed request", fmt.Sprintf("GET %s: reading the answer: %v", path, err), "see the host checks above")
		return
	}
	var e struct {
		Code    string          `json:"code"`
		Message string          `json:"message"`
		Detail  json.RawMessage `json:"detail"`
	}
	json.Unmarshal(body, &e)
	requestID := clean(resp.Header.Get(wire.HeaderRequestID), 64)

	switch {
	case resp.StatusCode == http.StatusOK:
		d.line("ok", "private key and serial", fmt.Sprintf("the API accepted the signed GET %s (HTTP 200 in %s)", path, ms(took)), "")
		d.checkCertificates(resp.Header, body)
	case resp.StatusCode == http.StatusNotFound && e.Code == "RESOURCE_NOT_EXISTS":
		d.line("ok", "private key and serial", fmt.Sprintf("the API accepted the signed GET %s (in %s)", path, ms(took)), "")
		if d.cfg.PublicKey == nil {
			d.line("FAIL", "mode", "this merchant has no platform certificates: it uses a WeChat Pay public key, which is not configured",
				"download the public key and its ID (PUB_KEY_ID_...) from the merchant platform (商户平台 → 账户中心 → API安全 → 微信支付公钥) and pass -public-key-id and -public-key")
			return
		}
		d.line("ok", "mode", "public key only: "+d.cfg.PublicKeyID+" (this merchant has no platform certificates)", "")
		d.checkResponseSignature(resp.Header, body, nil)
	case resp.StatusCode == http.StatusUnauthorized && e.Code == "SIGN_ERROR":
		found, fix := explainSignError(e.Message, e.Detail, d)
		d.line("FAIL", "private key and serial", found+requestIDNote(requestID), fix)
		d.line("skip", "APIv3 key", "not checked: the certificate download was refused", "")
	default:
		msg := fmt.Sprintf("GET %s answered HTTP %d", path, resp.StatusCode)
		if e.Code != "" {
			msg += " " + clean(e.Code, 64) + ": " + clean(e.Message, 200)
		}
		d.line("FAIL", "signed request", msg+requestIDNote(requestID), "if the answer is not WeChat Pay's, check -base-url and any proxy; otherwise quote the Request-ID to WeChat Pay support")
	}
}

func requestIDNote(id string) string {
	if id == "" {
		return ""
	}
	return " [Request-ID " + id + "]"
}

// explainSignError turns WeChat Pay's SIGN_ERROR message into a finding
// and its fix.
func explainSignError(message string, detail json.RawMessage, d *doctor) (string, string) {
	quoted := "the API answered 401 SIGN_ERROR: " + clean(message, 200)
	var det struct {
		Detail struct {
			Issue string `json:"issue"`
		} `json:"detail"`
	}
	json.Unmarshal(detail, &det)
	if det.Detail.Issue != "" {
		quoted += " (" + clean(det.Detail.Issue, 100) + ")"
	}
	switch {
	case strings.Contains(message, "timestamp") || strings.Contains(message, "时间"):
		fix := "the request's timestamp is more than 5 minutes from WeChat Pay's clock: set this machine's clock right (enable NTP)"
		if d.clockOK {
			fix += "; it is " + describeOffset(d.offset.Round(time.Second))
		}
		return quoted, fix
	case strings.Contains(message, "序列号") || strings.Contains(strings.ToLower(message), "serial"):
		return quoted, "-serial " + d.cfg.CertificateSerial + " is not this merchant's API certificate serial: read it with 'openssl x509 -in apiclient_cert.pem -noout -serial', or in the merchant platform (API安全 → API证书)"
	case strings.Contains(message, "mchid") || strings.Contains(message, "商户号"):
		return quoted, "-mchid " + d.cfg.MerchantID + " is not a merchant WeChat Pay knows: check the merchant ID (商户号)"
	case det.Detail.Issue == "sign not match" || strings.Contains(message, "签名"):
		return quoted, "-key is not the private key of certificate " + d.cfg.CertificateSerial + ": use the apiclient_key.pem issued with that apiclient_cert.pem " +
			"(their moduli must match: openssl x509 -in apiclient_cert.pem -noout -modulus; openssl rsa -in apiclient_key.pem -noout -modulus)"
	}
	return quoted, "run 'wechatpay sign' with the values in the answer's detail to compare the signing string; check -mchid, -serial and -key"
}

// checkCertificates decrypts and checks the certificate list, verifies
// the answer's signature, and reports the mode and expiry dates.
func (d *doctor) checkCertificates(h http.Header, body []byte) {
	var certs []*x509.Certificate
	var parsed []wire.Cert
	if d.cfg.APIv3Key == "" {
		d.line("skip", "APIv3 key", "not given; the platform certificates cannot be decrypted (public-key mode needs none)", "")
	} else {
		aead, err := wire.NewAEAD(d.cfg.APIv3Key)
		if err == nil {
			parsed, err = wire.ParseDownload(body, aead, time.Now(), nil)
		}
		for _, c := range parsed {
			certs = append(certs, c.X509)
		}
		switch {
		case errors.Is(err, wechatpay.ErrDecrypt):
			d.line("FAIL", "APIv3 key", "does not decrypt the platform certificates: it is not this merchant's APIv3 key",
				"copy the APIv3 key (32 characters) exactly as set in the merchant platform (商户平台 → 账户中心 → API安全 → APIv3密钥); if nobody has it, set a new one there and use that")
			return
		case err != nil:
			d.line("FAIL", "APIv3 key", "the certificate list could not be read: "+errText(err), "check -base-url: the answer does not look like WeChat Pay's")
			return
		}
		d.line("ok", "APIv3 key", fmt.Sprintf("decrypts the platform certificates (%d)", len(certs)), "")
	}
	d.checkResponseSignature(h, body, certs)
	now := time.Now()
	switch {
	case d.cfg.PublicKey != nil && len(certs) > 0:
		d.line("ok", "mode", "public key "+d.cfg.PublicKeyID+", and platform certificates (a migration: both verify)", "")
	case d.cfg.PublicKey != nil:
		d.line("ok", "mode", "public key "+d.cfg.PublicKeyID, "")
	default:
		d.line("ok", "mode", "platform certificates", "")
	}
	for _, c := range certs {
		left := c.NotAfter.Sub(now)
		found := fmt.Sprintf("%s valid %s to %s (%d days left)", wire.CertSerial(c), c.NotBefore.UTC().Format("2006-01-02"), c.NotAfter.UTC().Format("2006-01-02"), int(left.Hours()/24))
		if left < 30*24*time.Hour && len(certs) == 1 {
			d.line("WARN", "platform certificate", found+": expires soon and no successor is listed yet",
				"nothing to do if the library downloads certificates itself (it does); WeChat Pay lists the new certificate before the old one expires")
			continue
		}
		d.line("ok", "platform certificate", found, "")
	}
}

// checkResponseSignature verifies the answer's signature with the key it
// names: a listed certificate or the configured public key.
func (d *doctor) checkResponseSignature(h http.Header, body []byte, certs []*x509.Certificate) {
	serial := h.Get(wire.HeaderSerial)
	if serial == "" || h.Get(wire.HeaderSignature) == "" {
		d.line("FAIL", "answer signature", "WeChat Pay's answer is not signed", "check -base-url and any proxy between this machine and WeChat Pay: answers must come from WeChat Pay unaltered")
		return
	}
	var key *rsa.PublicKey
	if serial == d.cfg.PublicKeyID && d.cfg.PublicKey != nil {
		key = d.cfg.PublicKey
	}
	for _, c := range certs {
		if k, ok := c.PublicKey.(*rsa.PublicKey); ok && wire.CertSerial(c) == serial {
			key = k
		}
	}
	if key == nil {
		if len(certs) == 0 && d.cfg.APIv3Key == "" {
			d.line("skip", "answer signature", "signed by "+clean(serial, 64)+", which cannot be checked without the APIv3 key or that public key", "")
			return
		}
		d.line("FAIL", "answer signature", "signed by "+clean(serial, 64)+", which is neither a listed certificate nor the configured public key",
			"if the merchant uses a WeChat Pay public key, pass -public-key-id and -public-key as shown in the merchant platform")
		return
	}
	msg := wire.ResponseMessage(h.Get(wire.HeaderTimestamp), h.Get(wire.HeaderNonce), body)
	if err := wire.Verify(key, msg, h.Get(wire.HeaderSignature)); err != nil {
		d.line("FAIL", "answer signature", "does not verify with "+clean(serial, 64)+": "+errText(err),
			"if -public-key is given, check that it is the key of -public-key-id; otherwise something alters WeChat Pay's answers on the way")
		return
	}
	d.line("ok", "answer signature", "verifies with "+clean(serial, 64), "")
}

// clean makes text from the network safe to print: printable, bounded.
func clean(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '?'
		}
		return r
	}, s)
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}
