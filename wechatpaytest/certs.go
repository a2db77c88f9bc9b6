package wechatpaytest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"time"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

// beijing is the +08:00 zone of WeChat Pay's timestamps.
var beijing = time.FixedZone("CST", 8*60*60)

// newRootCA creates the server's self-signed root CA.
func (s *Server) newRootCA() {
	now := time.Now().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber:          newSerial(),
		Subject:               pkix.Name{CommonName: "wechatpaytest Root CA", Organization: []string{"wechatpaytest"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(20, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	key := takeKey()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic("wechatpaytest: create root CA: " + err.Error())
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		panic("wechatpaytest: parse root CA: " + err.Error())
	}
	s.caCert, s.caKey = ca, key
	s.roots = x509.NewCertPool()
	s.roots.AddCert(ca)
}

// issue returns a new platform certificate for key, valid from an hour ago
// for five years.
func (s *Server) issue(key *rsa.PrivateKey) *platformCert {
	now := time.Now().Truncate(time.Second)
	return s.issueWith(key, newSerial(), now.Add(-time.Hour), now.AddDate(5, 0, 0))
}

// issueWith makes a platform certificate as WeChat Pay's look, signed by
// the server's root CA.
func (s *Server) issueWith(key *rsa.PrivateKey, serial *big.Int, notBefore, notAfter time.Time) *platformCert {
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:         "Tenpay.com sign",
			Organization:       []string{"Tenpay.com"},
			OrganizationalUnit: []string{"Tenpay.com CA Center"},
			Country:            []string{"CN"},
			Locality:           []string{"Shenzhen"},
		},
		NotBefore: notBefore,
		NotAfter:  notAfter,
		// Platform keys sign responses and encrypt sensitive fields.
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.caCert, &key.PublicKey, s.caKey)
	if err != nil {
		panic("wechatpaytest: issue platform certificate: " + err.Error())
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		panic("wechatpaytest: parse platform certificate: " + err.Error())
	}
	return &platformCert{cert: c, key: key, serial: wire.CertSerial(c)}
}

// certificateList is the JSON of the certificate endpoint.
type certificateList struct {
	Data []certificateItem `json:"data"`
}

type certificateItem struct {
	SerialNo           string            `json:"serial_no"`
	EffectiveTime      string            `json:"effective_time"`
	ExpireTime         string            `json:"expire_time"`
	EncryptCertificate encryptedResource `json:"encrypt_certificate"`
}

type encryptedResource struct {
	Algorithm      string `json:"algorithm"`
	Nonce          string `json:"nonce"`
	AssociatedData string `json:"associated_data"`
	Ciphertext     string `json:"ciphertext"`
}

var jsonHeader = http.Header{"Content-Type": {"application/json"}}

// serveCertificates answers an authenticated download of the platform
// certificates of m, subject to SetCertDelay and SetCertFault.
func (s *Server) serveCertificates(w http.ResponseWriter, r *http.Request, m *merchant) {
	if d := time.Duration(s.certDelay.Load()); d > 0 && !s.wait(r.Context(), d) {
		return
	}
	fault := CertFault(s.certFault.Load())
	switch fault {
	case CertHang:
		s.wait(r.Context(), -1)
		return
	case CertStatus500:
		s.writeError(w, r, m, http.StatusInternalServerError, "SYSTEM_ERROR", "系统错误", nil)
		return
	case CertGarbage:
		s.writeSigned(w, r, m, http.StatusOK, jsonHeader, []byte("<html>this is not JSON</html>"), FaultNone)
		return
	}
	if s.opts.publicKeyOnly {
		s.writeError(w, r, m, http.StatusNotFound, "RESOURCE_NOT_EXISTS", "无可用的平台证书，请在商户平台-API安全申请使用微信支付公钥", nil)
		return
	}

	s.mu.Lock()
	certs := slices.Clone(m.certs)
	s.mu.Unlock()

	aead := m.aead
	if fault == CertWrongAPIv3Key {
		var err error
		if aead, err = wire.NewAEAD(randomText(32)); err != nil {
			panic(err)
		}
	}
	list := certificateList{Data: make([]certificateItem, 0, len(certs))}
	for _, c := range certs {
		nonce := randomText(12)
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.cert.Raw})
		ct, err := wire.Seal(aead, nonce, "certificate", pemBytes)
		if err != nil {
			panic(err) // the nonce has the right size
		}
		serial := c.serial
		if fault == CertSerialMismatch {
			serial = newSerialHex()
		}
		list.Data = append(list.Data, certificateItem{
			SerialNo:      serial,
			EffectiveTime: c.cert.NotBefore.In(beijing).Format(time.RFC3339),
			ExpireTime:    c.cert.NotAfter.In(beijing).Format(time.RFC3339),
			EncryptCertificate: encryptedResource{
				Algorithm:      "AEAD_AES_256_GCM",
				Nonce:          nonce,
				AssociatedData: "certificate",
				Ciphertext:     ct,
			},
		})
	}
	body, err := json.Marshal(list)
	if err != nil {
		panic(err)
	}
	signFault := FaultNone
	switch fault {
	case CertBadSignature:
		signFault = faultBadSignature
	case CertUnsigned:
		signFault = FaultNoHeaders
	}
	s.writeSigned(w, r, m, http.StatusOK, jsonHeader, body, signFault)
}

// Certificates returns the platform certificates the certificate endpoint
// currently lists for merchant id, oldest first. The certificates are
// shared; do not modify them.
func (s *Server) Certificates(merchantID string) []*x509.Certificate {
	m := s.merchant(merchantID)
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*x509.Certificate, len(m.certs))
	for i, c := range m.certs {
		out[i] = c.cert
	}
	return out
}

// SigningSerial returns the serial of the platform certificate that
// currently signs responses to merchant id, or its PUB_KEY_ID_ if the
// server was created with PublicKeyOnly. (With WithPublicKey, requests
// naming the public key are still answered signed with the public key.)
func (s *Server) SigningSerial(merchantID string) string {
	m := s.merchant(merchantID)
	if s.opts.publicKeyOnly {
		return m.info.PublicKeyID
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return m.signing.serial
}

// AddCertificate issues a new platform certificate for merchant id, with a
// key different from the merchant's other keys, and returns its serial.
// From now on the certificate endpoint lists it, but responses are still
// signed with the current certificate until UseCertificate switches: this
// is WeChat Pay's rotation, where a new certificate is listed 24 hours
// before it is used. AddCertificate panics in PublicKeyOnly mode.
func (s *Server) AddCertificate(merchantID string) string {
	m := s.merchant(merchantID)
	if s.opts.publicKeyOnly {
		panic("wechatpaytest: AddCertificate: merchants of a PublicKeyOnly server have no platform certificates")
	}
	s.mu.Lock()
	avoid := []*rsa.PrivateKey{m.info.PrivateKey, m.signing.key}
	if m.publicKey != nil {
		avoid = append(avoid, m.publicKey)
	}
	required := len(avoid)
	for _, c := range m.certs {
		avoid = append(avoid, c.key)
	}
	s.mu.Unlock()

	// Prefer a key no listed certificate uses; but the pool is small, so
	// with many listed certificates settle for one that differs from the
	// merchant key, the public key and the signing key.
	if len(avoid) >= poolSize {
		avoid = avoid[:required]
	}
	pc := s.issue(takeKey(avoid...))

	s.mu.Lock()
	m.certs = append(m.certs, pc)
	s.mu.Unlock()
	return pc.serial
}

// UseCertificate makes the listed platform certificate with the given
// serial sign all later responses to merchant id.
func (s *Server) UseCertificate(merchantID, serial string) {
	m := s.merchant(merchantID)
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.listed(m, serial, "UseCertificate")
	m.signing = m.certs[i]
}

// ExpireCertificate replaces the listed platform certificate with the given
// serial by a re-issued one with the same serial and key whose NotAfter
// (and expire_time) lies an hour in the past. If it signs responses, it
// keeps doing so.
func (s *Server) ExpireCertificate(merchantID, serial string) {
	m := s.merchant(merchantID)
	s.mu.Lock()
	old := m.certs[s.listed(m, serial, "ExpireCertificate")]
	s.mu.Unlock()

	now := time.Now().Truncate(time.Second)
	pc := s.issueWith(old.key, old.cert.SerialNumber, now.AddDate(-5, 0, 0).Add(-time.Hour), now.Add(-time.Hour))

	s.mu.Lock()
	defer s.mu.Unlock()
	if i := slices.Index(m.certs, old); i >= 0 {
		m.certs[i] = pc
	}
	if m.signing == old {
		m.signing = pc
	}
}

// RemoveCertificate stops listing the platform certificate with the given
// serial. If it is the signing certificate, responses stay signed with it
// until UseCertificate names another one, as when WeChat Pay signs with a
// certificate the merchant can no longer download.
func (s *Server) RemoveCertificate(merchantID, serial string) {
	m := s.merchant(merchantID)
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.listed(m, serial, "RemoveCertificate")
	m.certs = slices.Delete(m.certs, i, i+1) // readers work on copies
}

// listed returns the index of serial in m.certs, or panics. s.mu is held.
func (s *Server) listed(m *merchant, serial, caller string) int {
	i := slices.IndexFunc(m.certs, func(c *platformCert) bool { return c.serial == serial })
	if i < 0 {
		panic(fmt.Sprintf("wechatpaytest: %s: merchant %s lists no certificate %q", caller, m.info.ID, serial))
	}
	return i
}

// CertFault is a fault of the certificate endpoints, set with SetCertFault.
type CertFault int

// Faults of the certificate endpoints.
const (
	// CertOK serves the certificates normally.
	CertOK CertFault = iota
	// CertStatus500 answers 500 SYSTEM_ERROR (signed).
	CertStatus500
	// CertHang never answers: the request blocks until its context is
	// done or the server is closed.
	CertHang
	// CertGarbage answers 200, signed, with a body that is not JSON.
	CertGarbage
	// CertWrongAPIv3Key encrypts the certificates with a random key
	// instead of the merchant's APIv3 key.
	CertWrongAPIv3Key
	// CertSerialMismatch lists each certificate under a random serial_no
	// that differs from the serial of the encrypted certificate.
	CertSerialMismatch
	// CertBadSignature sends a well-formed Wechatpay-Signature that does
	// not verify.
	CertBadSignature
	// CertUnsigned sends no Wechatpay-* headers at all.
	CertUnsigned
)

// SetCertFault makes the certificate endpoints misbehave as f says, for
// all merchants, until it is set back to CertOK. Requests are still
// authenticated and counted first.
func (s *Server) SetCertFault(f CertFault) { s.certFault.Store(int64(f)) }

// SetCertDelay makes the certificate endpoints wait d before answering.
// A request whose context is done (or a server closed) while waiting gets
// no answer. Zero removes the delay.
func (s *Server) SetCertDelay(d time.Duration) { s.certDelay.Store(int64(d)) }

// Fault is a fault of the signed responses to routes registered with
// Handle, set with SetFault. Errors of authentication are never spoiled.
type Fault int

// Faults of signed responses.
const (
	// FaultNone signs responses correctly.
	FaultNone Fault = iota
	// FaultTamperBody flips a bit of one byte of the body after signing
	// (an empty body becomes a single space).
	FaultTamperBody
	// FaultTamperTimestamp adds one second to Wechatpay-Timestamp after
	// signing.
	FaultTamperTimestamp
	// FaultWrongSerial signs correctly but names another of the
	// merchant's serials in Wechatpay-Serial (another listed certificate,
	// else its public key ID, else a random serial).
	FaultWrongSerial
	// FaultProbe sends a signature probe as WeChat Pay does:
	// "WECHATPAY/SIGNTEST/" followed by random Base64.
	FaultProbe
	// FaultInvalidBase64 sends the signature "!!not-base64!!".
	FaultInvalidBase64
	// FaultNoHeaders strips every Wechatpay-* header.
	FaultNoHeaders
	// FaultRandomSerial signs correctly but sends a random 40-hex serial
	// that the merchant does not have.
	FaultRandomSerial
)

// SetFault spoils every later response to routes registered with Handle
// as f says, until it is set back to FaultNone.
func (s *Server) SetFault(f Fault) { s.fault.Store(int64(f)) }

var certFaultNames = [...]string{"CertOK", "CertStatus500", "CertHang", "CertGarbage", "CertWrongAPIv3Key", "CertSerialMismatch", "CertBadSignature", "CertUnsigned"}

// String returns the name of the constant f, such as "CertHang".
func (f CertFault) String() string {
	if f >= 0 && int(f) < len(certFaultNames) {
		return certFaultNames[f]
	}
	return fmt.Sprintf("CertFault(%d)", int(f))
}

var faultNames = [...]string{"FaultNone", "FaultTamperBody", "FaultTamperTimestamp", "FaultWrongSerial", "FaultProbe", "FaultInvalidBase64", "FaultNoHeaders", "FaultRandomSerial"}

// String returns the name of the constant f, such as "FaultProbe".
func (f Fault) String() string {
	if f >= 0 && int(f) < len(faultNames) {
		return faultNames[f]
	}
	return fmt.Sprintf("Fault(%d)", int(f))
}
