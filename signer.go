package wechatpay

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SchemeRSA is the APIv3 signature scheme: the Authorization scheme of
// requests and the default Wechatpay-Signature-Type of responses.
const SchemeRSA = "WECHATPAY2-SHA256-RSA2048"

// RequestMessage returns the string a merchant signs for a request
// (PROTOCOL §1.1): five lines, each ending in '\n', the last one being the
// exact body bytes sent (empty for GET). uri is the raw request-target,
// that is url.URL.RequestURI().
func RequestMessage(method, uri string, timestamp int64, nonce string, body []byte) []byte {
	b := make([]byte, 0, len(method)+len(uri)+len(nonce)+len(body)+16)
	b = append(b, method...)
	b = append(b, '\n')
	b = append(b, uri...)
	b = append(b, '\n')
	b = strconv.AppendInt(b, timestamp, 10)
	b = append(b, '\n')
	b = append(b, nonce...)
	b = append(b, '\n')
	b = append(b, body...)
	b = append(b, '\n')
	return b
}

// ResponseMessage returns the string WeChat Pay signs for a response or a
// callback (PROTOCOL §2.2): timestamp and nonce exactly as they appear in the
// Wechatpay-Timestamp and Wechatpay-Nonce headers, then the raw body.
func ResponseMessage(timestamp, nonce string, body []byte) []byte {
	b := make([]byte, 0, len(timestamp)+len(nonce)+len(body)+3)
	b = append(b, timestamp...)
	b = append(b, '\n')
	b = append(b, nonce...)
	b = append(b, '\n')
	b = append(b, body...)
	b = append(b, '\n')
	return b
}

// SignMessage signs msg with SHA256-RSA (RSASSA-PKCS1-v1_5) and returns
// the standard, padded Base64 of the signature.
func SignMessage(key crypto.Signer, msg []byte) (string, error) {
	if key == nil {
		return "", errors.New("wechatpay: sign: no private key")
	}
	d := sha256.Sum256(msg)
	sig, err := key.Sign(rand.Reader, d[:], crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("wechatpay: sign: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// VerifyMessage checks a Base64 SHA256-RSA signature of msg. Any problem,
// including undecodable Base64, is reported as ErrBadSignature.
func VerifyMessage(pub *rsa.PublicKey, msg []byte, signature string) error {
	if pub == nil {
		return fmt.Errorf("%w: no key", ErrBadSignature)
	}
	var buf [512]byte
	n := base64.StdEncoding.DecodedLen(len(signature))
	if n > len(buf) {
		return fmt.Errorf("%w: signature is %d bytes long", ErrBadSignature, len(signature))
	}
	n, err := base64.StdEncoding.Decode(buf[:], []byte(signature))
	if err != nil {
		return fmt.Errorf("%w: signature is not valid base64", ErrBadSignature)
	}
	d := sha256.Sum256(msg)
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], buf[:n]); err != nil {
		return ErrBadSignature
	}
	return nil
}

// NewNonce returns 32 upper-case hexadecimal characters from crypto/rand,
// the form of WeChat Pay's own examples.
func NewNonce() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go ≥ 1.24)
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

// A Signer computes the Authorization header of APIv3 requests for one
// merchant. Its key may be any RSA crypto.Signer, so keys held in a KMS or
// HSM work. A Signer is safe for concurrent use; do not change its fields
// after first use. Its String method never prints the key.
type Signer struct {
	// MerchantID is the calling merchant (for a service provider, the
	// sp_mchid). Required.
	MerchantID string
	// CertificateSerial is the serial of the merchant API certificate
	// (apiclient_cert.pem), not a platform certificate. Required.
	CertificateSerial string
	// Key is the merchant API private key. Required.
	Key crypto.Signer

	now func() time.Time // test hook; nil means time.Now
}

func (s *Signer) check() error {
	var missing []string
	if s.MerchantID == "" {
		missing = append(missing, "MerchantID")
	}
	if s.CertificateSerial == "" {
		missing = append(missing, "CertificateSerial")
	}
	if s.Key == nil {
		missing = append(missing, "Key")
	}
	if len(missing) > 0 {
		return fmt.Errorf("wechatpay: signer: missing %s", strings.Join(missing, ", "))
	}
	return nil
}

// Authorization signs a request with a fresh nonce and the current time and
// returns the value of its Authorization header. uri is the raw
// request-target (url.URL.RequestURI()), body the exact bytes sent.
func (s *Signer) Authorization(method, uri string, body []byte) (string, error) {
	now := time.Now
	if s.now != nil {
		now = s.now
	}
	return s.AuthorizationAt(method, uri, body, now().Unix(), NewNonce())
}

// AuthorizationAt is Authorization with a given timestamp (Unix seconds)
// and nonce, for known-answer tests and for debugging a SIGN_ERROR.
func (s *Signer) AuthorizationAt(method, uri string, body []byte, timestamp int64, nonce string) (string, error) {
	if err := s.check(); err != nil {
		return "", err
	}
	sig, err := SignMessage(s.Key, RequestMessage(method, uri, timestamp, nonce, body))
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.Grow(len(SchemeRSA) + len(s.MerchantID) + len(nonce) + len(sig) + len(s.CertificateSerial) + 80)
	b.WriteString(SchemeRSA)
	b.WriteString(` mchid="`)
	b.WriteString(s.MerchantID)
	b.WriteString(`",nonce_str="`)
	b.WriteString(nonce)
	b.WriteString(`",timestamp="`)
	b.WriteString(strconv.FormatInt(timestamp, 10))
	b.WriteString(`",serial_no="`)
	b.WriteString(s.CertificateSerial)
	b.WriteString(`",signature="`)
	b.WriteString(sig)
	b.WriteString(`"`)
	return b.String(), nil
}

// String describes the signer without its key.
func (s *Signer) String() string {
	return fmt.Sprintf("wechatpay.Signer{MerchantID: %q, CertificateSerial: %q, Key: [redacted]}", s.MerchantID, s.CertificateSerial)
}

// GoString is String, so that %#v does not print the key either.
func (s *Signer) GoString() string { return s.String() }

// AuthParams are the parameters of an APIv3 Authorization header.
type AuthParams struct {
	MerchantID string // mchid
	Nonce      string // nonce_str
	Timestamp  string // timestamp, Unix seconds as sent
	Serial     string // serial_no, the merchant certificate serial
	Signature  string // signature, Base64
}

// ParseAuthorization parses an APIv3 Authorization header the way WeChat
// Pay reads it: scheme WECHATPAY2-SHA256-RSA2048, then the five key="value"
// pairs in any order, separated by commas. The sandbox uses it; it is also
// handy for logging which merchant and serial a request claimed.
func ParseAuthorization(h string) (AuthParams, error) {
	var p AuthParams
	rest, ok := strings.CutPrefix(h, SchemeRSA+" ")
	if !ok {
		return p, fmt.Errorf("wechatpay: Authorization: want scheme %s", SchemeRSA)
	}
	seen := 0
	for part := range strings.SplitSeq(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
			return p, fmt.Errorf("wechatpay: Authorization: malformed pair %q", truncate(k, 20))
		}
		v = v[1 : len(v)-1]
		var dst *string
		switch k {
		case "mchid":
			dst = &p.MerchantID
		case "nonce_str":
			dst = &p.Nonce
		case "timestamp":
			dst = &p.Timestamp
		case "serial_no":
			dst = &p.Serial
		case "signature":
			dst = &p.Signature
		default:
			return p, fmt.Errorf("wechatpay: Authorization: unknown key %q", truncate(k, 20))
		}
		if *dst != "" {
			return p, fmt.Errorf("wechatpay: Authorization: duplicate key %q", k)
		}
		*dst = v
		seen++
	}
	if seen != 5 || p.MerchantID == "" || p.Nonce == "" || p.Timestamp == "" || p.Serial == "" || p.Signature == "" {
		return p, errors.New("wechatpay: Authorization: want mchid, nonce_str, timestamp, serial_no and signature")
	}
	return p, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
