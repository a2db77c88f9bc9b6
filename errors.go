package wechatpay

import (
	"errors"

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
