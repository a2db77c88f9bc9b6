package wechatpay

import (
	"errors"
	"net/url"
	"strings"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

// The errors of this package. Test for them with errors.Is: they come
// wrapped, in a *VerifyError when a response or callback did not verify.
var (
	// Why a response or callback did not verify.
	ErrBadSignature     = wire.ErrBadSignature
	ErrUnknownSerial    = errors.New("wechatpay: no key for serial")
	ErrExpiredKey       = errors.New("wechatpay: certificate for serial has expired")
	ErrClockSkew        = errors.New("wechatpay: timestamp outside allowed window")
	ErrSignatureProbe   = errors.New("wechatpay: signature probe (WECHATPAY/SIGNTEST), verification failed as intended")
	ErrMissingSignature = errors.New("wechatpay: missing or malformed signature headers")
	ErrSignatureType    = errors.New("wechatpay: unsupported Wechatpay-Signature-Type")

	// ErrBodyTooLarge: a request, response or callback body exceeds its
	// size limit.
	ErrBodyTooLarge = wire.ErrBodyTooLarge

	// ErrNotConfigured: a Transport misses its Signer or Verifier; it
	// refuses to send rather than pass unverified data.
	ErrNotConfigured = errors.New("wechatpay: transport needs a Signer and a Verifier")

	// ErrHostNotAllowed: a request names a host the Transport does not
	// sign for; nothing was sent. A signature is a credential for five
	// minutes: it goes only to the merchant's API hosts.
	ErrHostNotAllowed = errors.New("wechatpay: refusing to sign a request for a host that is not this merchant's WeChat Pay API host")

	// ErrUnknownMerchant: a Store was asked about a merchant never
	// registered with it.
	ErrUnknownMerchant = errors.New("wechatpay: merchant not registered with the store")

	// ErrCertificateDownload wraps every failure to download or check
	// platform certificates.
	ErrCertificateDownload = errors.New("wechatpay: certificate download failed")

	// ErrNoPlatformCertificates: WeChat Pay answered the certificate
	// download with 404 RESOURCE_NOT_EXISTS, so the merchant uses a WeChat
	// Pay public key only (docs/protocol.md §3.3). The Store drops the
	// merchant's platform certificates and remembers it.
	ErrNoPlatformCertificates = errors.New("wechatpay: merchant has no platform certificates (public-key mode: configure PublicKeyID and PublicKey)")

	// ErrAPIv3Key: an APIv3 key is not exactly 32 bytes.
	ErrAPIv3Key = wire.ErrAPIv3Key

	// ErrDecrypt: an AEAD_AES_256_GCM ciphertext does not open; the APIv3
	// key is wrong, or the ciphertext, nonce or associated data were
	// altered.
	ErrDecrypt = wire.ErrDecrypt

	// ErrBillHash: a file DownloadBill received does not match the hash
	// the bill request announced.
	ErrBillHash = errors.New("wechatpay: bill file does not match its hash")

	// ErrCacheMiss: a Cache's Get found nothing under the key.
	ErrCacheMiss = errors.New("wechatpay: cache miss")
)

// prefix starts every message of this package, once per chain.
const prefix = "wechatpay: "

// onePrefix returns s with every "wechatpay: " after the first removed:
// errors of this package carry the prefix so that each reads well alone,
// and a chain of them says it once. The error types that compose a chain
// (VerifyError, OutcomeUnknownError, signRefusedError) pass their text
// through it.
func onePrefix(s string) string {
	i := strings.Index(s, prefix)
	if i < 0 {
		return s
	}
	i += len(prefix)
	return s[:i] + strings.ReplaceAll(s[i:], prefix, "")
}

// inner is the text of err as the cause inside another error of this
// package: without its prefix, and without the "Post \"URL\": " that
// http.Client adds, since the outer error names the request.
func inner(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		err = ue.Err
	}
	return strings.TrimPrefix(onePrefix(err.Error()), prefix)
}

// signRefusal returns WeChat Pay's answer when err says that the platform
// certificate download was refused with SIGN_ERROR: WeChat Pay did not
// accept the merchant's signature (most often a wrong merchant
// certificate serial, or a private key that is not that certificate's).
// Every request of the merchant is signed the same way.
func signRefusal(err error) *APIError {
	var apiErr *APIError
	if errors.Is(err, ErrCertificateDownload) && errors.As(err, &apiErr) && apiErr.Code == "SIGN_ERROR" {
		return apiErr
	}
	return nil
}

// signRefusalText says, cause first, that WeChat Pay refused the
// merchant's signature, and what to check.
func signRefusalText(err error, apiErr *APIError) string {
	var b strings.Builder
	b.WriteString(prefix + "WeChat Pay refused ")
	var verr *VerifyError
	if errors.As(err, &verr) && verr.MerchantID != "" {
		b.WriteString("merchant " + wire.Truncate(verr.MerchantID, 32) + "'s signature")
	} else {
		b.WriteString("this merchant's signature")
	}
	b.WriteString(" (SIGN_ERROR on the platform certificate download")
	if apiErr.Message != "" {
		b.WriteString(": " + wire.Truncate(apiErr.Message, 120))
	}
	if apiErr.RequestID != "" {
		b.WriteString(" [Request-ID " + wire.Truncate(apiErr.RequestID, 64) + "]")
	}
	b.WriteString("); check that CertificateSerial is the serial of the merchant API certificate (apiclient_cert.pem) and that PrivateKey is that certificate's key (apiclient_key.pem)")
	return b.String()
}

// A signRefusedError is a failure whose cause is a refused signature
// (see signRefusal); its message says so first. ClassifyError returns
// one for a call whose outcome is known or irrelevant (a query, or a
// request that was never sent).
type signRefusedError struct {
	apiErr *APIError
	err    error
}

func (e *signRefusedError) Error() string {
	return onePrefix(signRefusalText(e.err, e.apiErr) + ": " + inner(e.err))
}

func (e *signRefusedError) Unwrap() error { return e.err }
