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
	"slices"
	"sync"
	"time"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

// The certificate authority: the sandbox's root CA, the platform
// certificates it issues to each merchant, their rotation, the WeChat Pay
// public keys, and which key signs an answer or decrypts a field.

// beijing is the +08:00 zone of WeChat Pay's timestamps.
var beijing = time.FixedZone("CST", 8*60*60)

// authority is the sandbox's certificate authority. It is immutable after
// NewServer; each merchant's certificates are in its keyring.
type authority struct {
	caCert *x509.Certificate
	caKey  *rsa.PrivateKey
	roots  *x509.CertPool

	publicKey     bool // merchants have a WeChat Pay public key
	publicKeyOnly bool // ... and no platform certificate
}

// platformCert is a platform certificate and its private key. It is
// immutable; reissue replaces it.
type platformCert struct {
	cert   *x509.Certificate
	key    *rsa.PrivateKey
	serial string
}

// keyring is one merchant's platform certificates. Readers get copies of
// the list, so a change never alters a list being served.
type keyring struct {
	mu      sync.Mutex
	certs   []*platformCert // guarded by mu; listed by the certificate endpoint, oldest first
	signing *platformCert   // guarded by mu; signs answers; nil without platform certificates
}

// snapshot returns the listed certificates and the signing one.
func (k *keyring) snapshot() ([]*platformCert, *platformCert) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.certs), k.signing
}

// find returns the listed certificate with the given serial, or nil.
func (k *keyring) find(serial string) *platformCert {
	k.mu.Lock()
	defer k.mu.Unlock()
	if i := k.index(serial); i >= 0 {
		return k.certs[i]
	}
	return nil
}

// index returns the index of serial in k.certs, or -1; k.mu is held.
func (k *keyring) index(serial string) int {
	return slices.IndexFunc(k.certs, func(c *platformCert) bool { return c.serial == serial })
}

// newAuthority creates the root CA.
func newAuthority(o *options) *authority {
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
	a := &authority{caCert: ca, caKey: key, roots: x509.NewCertPool(), publicKey: o.publicKey, publicKeyOnly: o.publicKeyOnly}
	a.roots.AddCert(ca)
	return a
}

// issue returns a new platform certificate for key, valid from an hour ago
// for five years.
func (a *authority) issue(key *rsa.PrivateKey) *platformCert {
	now := time.Now().Truncate(time.Second)
	return a.issueWith(key, newSerial(), now.Add(-time.Hour), now.AddDate(5, 0, 0))
}

// issueWith makes a platform certificate as WeChat Pay's look, signed by
// the root CA.
func (a *authority) issueWith(key *rsa.PrivateKey, serial *big.Int, notBefore, notAfter time.Time) *platformCert {
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
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.caCert, &key.PublicKey, a.caKey)
	if err != nil {
		panic("wechatpaytest: issue platform certificate: " + err.Error())
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		panic("wechatpaytest: parse platform certificate: " + err.Error())
	}
	return &platformCert{cert: c, key: key, serial: wire.CertSerial(c)}
}

// issueMerchant issues the merchant API certificate of info, with the
// serial info.CertificateSerial names, as WeChat Pay's CA issues
// apiclient_cert.pem.
func (a *authority) issueMerchant(info *Merchant) (*x509.Certificate, error) {
	serial, ok := new(big.Int).SetString(info.CertificateSerial, 16)
	if !ok || serial.Sign() <= 0 {
		return nil, fmt.Errorf("serial %q is not hexadecimal", info.CertificateSerial)
	}
	now := time.Now().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:         info.ID,
			Organization:       []string{"微信商户系统"},
			OrganizationalUnit: []string{"wechatpaytest sandbox merchant"},
			Country:            []string{"CN"},
			Locality:           []string{"Shenzhen"},
		},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(5, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.caCert, &info.PrivateKey.PublicKey, a.caKey)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// addCertificate issues a new platform certificate for m, listed but not
// signing, and returns its serial.
func (a *authority) addCertificate(m *merchant) string {
	if a.publicKeyOnly {
		panic("wechatpaytest: AddCertificate: merchants of a PublicKeyOnly server have no platform certificates")
	}
	certs, signing := m.keys.snapshot()
	avoid := []*rsa.PrivateKey{m.info.PrivateKey, signing.key}
	if m.publicKey != nil {
		avoid = append(avoid, m.publicKey)
	}
	required := len(avoid)
	for _, c := range certs {
		avoid = append(avoid, c.key)
	}
	// Prefer a key no listed certificate uses; but the pool is small, so
	// with many listed certificates settle for one that differs from the
	// merchant key, the public key and the signing key.
	if len(avoid) >= poolSize {
		avoid = avoid[:required]
	}
	pc := a.issue(takeKey(avoid...))

	m.keys.mu.Lock()
	m.keys.certs = append(m.keys.certs, pc)
	m.keys.mu.Unlock()
	return pc.serial
}

// listed returns the listed certificate of m with the given serial, or
// panics naming the exported method that was called.
func listed(m *merchant, serial, caller string) *platformCert {
	pc := m.keys.find(serial)
	if pc == nil {
		panic(fmt.Sprintf("wechatpaytest: %s: merchant %s lists no certificate %q", caller, m.info.ID, serial))
	}
	return pc
}

// useCertificate makes the listed certificate serial sign m's answers.
func (a *authority) useCertificate(m *merchant, serial string) {
	pc := listed(m, serial, "UseCertificate")
	m.keys.mu.Lock()
	defer m.keys.mu.Unlock()
	m.keys.signing = pc
}

// removeCertificate stops listing serial; a signing certificate keeps
// signing.
func (a *authority) removeCertificate(m *merchant, serial string) {
	m.keys.mu.Lock()
	defer m.keys.mu.Unlock()
	i := m.keys.index(serial)
	if i < 0 {
		panic(fmt.Sprintf("wechatpaytest: RemoveCertificate: merchant %s lists no certificate %q", m.info.ID, serial))
	}
	m.keys.certs = slices.Delete(slices.Clone(m.keys.certs), i, i+1)
}

// reissue replaces the listed certificate serial by one with the same
// serial and key and the validity period span returns for the old one.
// A signing certificate keeps signing.
func (a *authority) reissue(m *merchant, serial, caller string, span func(old *x509.Certificate) (notBefore, notAfter time.Time)) {
	old := listed(m, serial, caller)
	nb, na := span(old.cert)
	pc := a.issueWith(old.key, old.cert.SerialNumber, nb, na)

	m.keys.mu.Lock()
	defer m.keys.mu.Unlock()
	m.keys.certs = slices.Clone(m.keys.certs)
	for i, c := range m.keys.certs {
		if c == old {
			m.keys.certs[i] = pc
		}
	}
	if m.keys.signing == old {
		m.keys.signing = pc
	}
}

// signingSerial names the key that signs answers to m by default.
func (a *authority) signingSerial(m *merchant) string {
	if a.publicKeyOnly {
		return m.info.PublicKeyID
	}
	_, signing := m.keys.snapshot()
	return signing.serial
}

// responseKey returns the serial and key that sign an answer to m for a
// request that sent Wechatpay-Serial reqSerial: the public key when the
// request names it (or the merchant has nothing else), otherwise the
// signing platform certificate.
func (a *authority) responseKey(m *merchant, reqSerial string) (string, *rsa.PrivateKey) {
	if m.publicKey != nil && (a.publicKeyOnly || reqSerial == m.info.PublicKeyID) {
		return m.info.PublicKeyID, m.publicKey
	}
	_, signing := m.keys.snapshot()
	return signing.serial, signing.key
}

// hasKey reports whether serial names one of m's listed platform
// certificates or its public key.
func (a *authority) hasKey(m *merchant, serial string) bool {
	if m.info.PublicKeyID != "" && serial == m.info.PublicKeyID {
		return true
	}
	return m.keys.find(serial) != nil
}

// decryptionKey returns the private key of m named by serial: its public
// key, or a listed platform certificate valid at now; else nil.
func (a *authority) decryptionKey(m *merchant, serial string, now time.Time) *rsa.PrivateKey {
	if serial == "" {
		return nil
	}
	if m.publicKey != nil && serial == m.info.PublicKeyID {
		return m.publicKey
	}
	if c := m.keys.find(serial); c != nil && !now.Before(c.cert.NotBefore) && now.Before(c.cert.NotAfter) {
		return c.key
	}
	return nil
}

// otherSerial returns a serial of m other than serial: a listed platform
// certificate, else the public key ID, else a random one.
func (a *authority) otherSerial(m *merchant, serial string) string {
	certs, _ := m.keys.snapshot()
	for _, c := range certs {
		if c.serial != serial {
			return c.serial
		}
	}
	if id := m.info.PublicKeyID; id != "" && id != serial {
		return id
	}
	return newSerialHex()
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

// certificateJSON is m's certificate list as /v3/certificates serves it,
// spoiled as fault says (CertWrongAPIv3Key, CertSerialMismatch).
func (a *authority) certificateJSON(m *merchant, fault CertFault) []byte {
	certs, _ := m.keys.snapshot()
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
		ct, err := wire.Seal(aead, nonce, "certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.cert.Raw}))
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
				Algorithm: "AEAD_AES_256_GCM", Nonce: nonce, AssociatedData: "certificate", Ciphertext: ct,
			},
		})
	}
	body, err := json.Marshal(list)
	if err != nil {
		panic(err)
	}
	return body
}

// Roots returns a pool holding the sandbox root CA, which issued every
// platform certificate of the server.
func (s *Server) Roots() *x509.CertPool { return s.ca.roots.Clone() }

// Certificates returns the platform certificates the certificate endpoint
// currently lists for merchant id, oldest first. The certificates are
// shared; do not modify them.
func (s *Server) Certificates(merchantID string) []*x509.Certificate {
	certs, _ := s.merchants.get(merchantID).keys.snapshot()
	out := make([]*x509.Certificate, len(certs))
	for i, c := range certs {
		out[i] = c.cert
	}
	return out
}

// SigningSerial returns the serial of the platform certificate that
// currently signs responses to merchant id, or its PUB_KEY_ID_ if the
// server was created with PublicKeyOnly. (With WithPublicKey, requests
// naming the public key are still answered signed with the public key.)
func (s *Server) SigningSerial(merchantID string) string {
	return s.ca.signingSerial(s.merchants.get(merchantID))
}

// AddCertificate issues a new platform certificate for merchant id, with a
// key different from the merchant's other keys, and returns its serial.
// From now on the certificate endpoint lists it, but responses are still
// signed with the current certificate until UseCertificate switches: this
// is WeChat Pay's rotation, where a new certificate is listed 24 hours
// before it is used. AddCertificate panics in PublicKeyOnly mode.
func (s *Server) AddCertificate(merchantID string) string {
	return s.ca.addCertificate(s.merchants.get(merchantID))
}

// UseCertificate makes the listed platform certificate with the given
// serial sign all later responses to merchant id.
func (s *Server) UseCertificate(merchantID, serial string) {
	s.ca.useCertificate(s.merchants.get(merchantID), serial)
}

// ExpireCertificate replaces the listed platform certificate with the given
// serial by a re-issued one with the same serial and key whose NotAfter
// (and expire_time) lies an hour in the past. If it signs responses, it
// keeps doing so.
func (s *Server) ExpireCertificate(merchantID, serial string) {
	now := time.Now().Truncate(time.Second)
	s.ca.reissue(s.merchants.get(merchantID), serial, "ExpireCertificate", func(*x509.Certificate) (time.Time, time.Time) {
		return now.AddDate(-5, 0, 0).Add(-time.Hour), now.Add(-time.Hour)
	})
}

// SetCertificateExpiry replaces the listed platform certificate with the
// given serial by a re-issued one with the same serial and key that
// expires at notAfter (truncated to the second), like ExpireCertificate
// but at any time, so that a test can let a certificate expire while a
// client holds it. If it signs responses, it keeps doing so.
func (s *Server) SetCertificateExpiry(merchantID, serial string, notAfter time.Time) {
	s.ca.reissue(s.merchants.get(merchantID), serial, "SetCertificateExpiry", func(old *x509.Certificate) (time.Time, time.Time) {
		return old.NotBefore, notAfter.Truncate(time.Second)
	})
}

// RemoveCertificate stops listing the platform certificate with the given
// serial. If it is the signing certificate, responses stay signed with it
// until UseCertificate names another one, as when WeChat Pay signs with a
// certificate the merchant can no longer download.
func (s *Server) RemoveCertificate(merchantID, serial string) {
	s.ca.removeCertificate(s.merchants.get(merchantID), serial)
}
