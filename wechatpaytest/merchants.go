package wechatpaytest

import (
	"crypto/cipher"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"sync"
	"sync/atomic"

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
	// Certificate is the merchant API certificate (apiclient_cert.pem)
	// for PrivateKey, issued by the sandbox root CA (Server.Roots); its
	// serial, in WeChat Pay's notation, is CertificateSerial. Some
	// clients load it to learn the serial.
	Certificate *x509.Certificate
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

// merchant is the server-side state of one merchant. All but downloads
// and keys is fixed once the merchant is registered.
type merchant struct {
	info      Merchant
	aead      cipher.AEAD     // from info.APIv3Key
	publicKey *rsa.PrivateKey // private half of info.PublicKey; nil unless enabled
	downloads atomic.Int64    // authenticated certificate endpoint requests
	keys      keyring         // platform certificates (authority.go)
}

// merchants is the registry of the server's merchants.
type merchants struct {
	defaultID string // set by NewServer before the server serves

	mu   sync.Mutex
	byID map[string]*merchant // guarded by mu; merchants are never removed
}

func newMerchants() *merchants { return &merchants{byID: make(map[string]*merchant)} }

// get returns the merchant with the given ID, or panics: a test named a
// merchant the server does not have.
func (ms *merchants) get(id string) *merchant {
	m := ms.lookup(id)
	if m == nil {
		panic(fmt.Sprintf("wechatpaytest: no merchant %q", id))
	}
	return m
}

// lookup returns the merchant with the given ID, or nil.
func (ms *merchants) lookup(id string) *merchant {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.byID[id]
}

// orDefault returns m, or the default merchant if m is nil.
func (ms *merchants) orDefault(m *merchant) *merchant {
	if m == nil {
		return ms.get(ms.defaultID)
	}
	return m
}

// add registers the merchant create returns, calling it again in the
// unlikely case that its random ID is taken.
func (ms *merchants) add(create func() *merchant) *merchant {
	for {
		m := create()
		ms.mu.Lock()
		taken := ms.byID[m.info.ID] != nil
		if !taken {
			ms.byID[m.info.ID] = m
		}
		ms.mu.Unlock()
		if !taken {
			return m
		}
	}
}

// newMerchant creates a merchant with a random ID, or the identity and
// keys of saved if it is not nil, its merchant API certificate, and its
// platform certificate or public key as the authority's mode says. It is
// not registered yet.
func newMerchant(ca *authority, saved *savedMerchant, statePath string) *merchant {
	m := &merchant{}
	m.info.ID = "19" + randomDigits(8)
	m.info.CertificateSerial = newSerialHex()
	m.info.PrivateKey = takeKey()
	m.info.APIv3Key = randomText(32)
	m.info.APIv2Key = randomText(32)
	if saved != nil {
		k, err := parseSavedKey(saved.PrivateKey)
		if err != nil || len(saved.APIv3Key) != 32 || saved.ID == "" {
			panic(fmt.Sprintf("wechatpaytest: state file %s: bad merchant", statePath))
		}
		m.info.ID, m.info.CertificateSerial, m.info.PrivateKey = saved.ID, saved.CertificateSerial, k
		m.info.APIv3Key, m.info.APIv2Key = saved.APIv3Key, saved.APIv2Key
	}
	cert, err := ca.issueMerchant(&m.info)
	if err != nil {
		panic(fmt.Sprintf("wechatpaytest: merchant certificate: %v", err))
	}
	m.info.Certificate = cert
	aead, err := wire.NewAEAD(m.info.APIv3Key)
	if err != nil {
		panic(err) // a 32-byte key always works
	}
	m.aead = aead
	avoid := []*rsa.PrivateKey{m.info.PrivateKey}
	if ca.publicKey {
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
	if !ca.publicKeyOnly {
		pc := ca.issue(takeKey(avoid...))
		m.keys.certs = []*platformCert{pc}
		m.keys.signing = pc
	}
	return m
}

// saved returns m in the state file's form.
func (m *merchant) saved() *savedMerchant {
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
