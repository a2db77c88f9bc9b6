package wire

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
)

// SchemeRSA is the APIv3 signature scheme: the Authorization scheme of
// requests and the default Wechatpay-Signature-Type of responses.
const SchemeRSA = "WECHATPAY2-SHA256-RSA2048"

// Header names of WeChat Pay's signature headers (docs/protocol.md §2.1).
const (
	HeaderTimestamp     = "Wechatpay-Timestamp"
	HeaderNonce         = "Wechatpay-Nonce"
	HeaderSignature     = "Wechatpay-Signature"
	HeaderSerial        = "Wechatpay-Serial"
	HeaderSignatureType = "Wechatpay-Signature-Type"
	HeaderRequestID     = "Request-Id"
)

// ProbePrefix starts the deliberately wrong signatures WeChat Pay sends to
// test that merchants verify (docs/protocol.md §2.4).
const ProbePrefix = "WECHATPAY/SIGNTEST/"

// PublicKeyPrefix starts the IDs of WeChat Pay public keys (§3).
const PublicKeyPrefix = "PUB_KEY_ID_"

// ErrBadSignature is wechatpay.ErrBadSignature.
var ErrBadSignature = errors.New("wechatpay: signature does not match")

// RequestMessage returns the string a merchant signs for a request (§1.1):
// five lines, each ending in '\n', the last one being the exact body bytes
// sent (empty for GET). uri is the raw request-target, url.URL.RequestURI().
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
// callback (§2.2): timestamp and nonce exactly as they appear in the
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

// Sign signs msg with SHA256-RSA (RSASSA-PKCS1-v1_5) and returns the
// standard, padded Base64 of the signature.
func Sign(key crypto.Signer, msg []byte) (string, error) {
	sig, err := SignDigest(key, sha256.Sum256(msg))
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// SignDigest signs a SHA-256 digest with RSASSA-PKCS1-v1_5 and returns
// the raw signature.
func SignDigest(key crypto.Signer, d [sha256.Size]byte) ([]byte, error) {
	if key == nil {
		return nil, errors.New("wechatpay: sign: no private key")
	}
	sig, err := key.Sign(rand.Reader, d[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("wechatpay: sign: %w", err)
	}
	return sig, nil
}

// WriteBase64 writes the standard, padded Base64 of src to b, through a
// buffer on the stack.
func WriteBase64(b *strings.Builder, src []byte) {
	var buf [64]byte
	for len(src) > 0 {
		n := min(len(src), 48) // a multiple of 3: padding only at the end
		base64.StdEncoding.Encode(buf[:], src[:n])
		b.Write(buf[:base64.StdEncoding.EncodedLen(n)])
		src = src[n:]
	}
}

// Verify checks a Base64 SHA256-RSA signature of msg. Any problem,
// including undecodable Base64, is reported as ErrBadSignature.
func Verify(pub *rsa.PublicKey, msg []byte, signature string) error {
	return verifyDigest(nil, pub, sha256.Sum256(msg), signature)
}

// A VerifyFunc checks an RSASSA-PKCS1-v1_5 signature of a digest, as
// rsa.VerifyPKCS1v15 does; a cryptography backend may supply its own.
type VerifyFunc func(pub *rsa.PublicKey, hash crypto.Hash, hashed, sig []byte) error

// VerifyResponse checks a Base64 SHA256-RSA signature of the message
// ResponseMessage(timestamp, nonce, body) without building it, with check
// (nil means rsa.VerifyPKCS1v15). Any problem is ErrBadSignature.
func VerifyResponse(check VerifyFunc, pub *rsa.PublicKey, timestamp, nonce string, body []byte, signature string) error {
	h := getHasher()
	h.str(timestamp)
	h.str(nonce)
	h.bytes(body)
	d := h.sum()
	return verifyDigest(check, pub, d, signature)
}

func verifyDigest(check VerifyFunc, pub *rsa.PublicKey, d [sha256.Size]byte, signature string) error {
	if pub == nil {
		return fmt.Errorf("%w: no key", ErrBadSignature)
	}
	if base64.StdEncoding.DecodedLen(len(signature)) > maxSignature {
		return fmt.Errorf("%w: signature is %d bytes long", ErrBadSignature, len(signature))
	}
	// The decoded signature and the digest go to check, which may be any
	// function: pooled buffers, since arrays on the stack would escape.
	b := sigBufs.Get().(*sigBuf)
	defer sigBufs.Put(b)
	n := copy(b.enc[:], signature)
	n, err := base64.StdEncoding.Decode(b.sig[:], b.enc[:n])
	if err != nil {
		return fmt.Errorf("%w: signature is not valid base64", ErrBadSignature)
	}
	b.digest = d
	if check == nil {
		check = rsa.VerifyPKCS1v15
	}
	if err := check(pub, crypto.SHA256, b.digest[:], b.sig[:n]); err != nil {
		return ErrBadSignature
	}
	return nil
}

// maxSignature is the longest signature accepted, in bytes: RSA-4096.
const maxSignature = 512

type sigBuf struct {
	enc    [(maxSignature + 2) / 3 * 4]byte // holds any signature the length check lets through
	sig    [maxSignature]byte
	digest [sha256.Size]byte
}

var sigBufs = sync.Pool{New: func() any { return new(sigBuf) }}

// RequestDigest is the SHA-256 of RequestMessage(method, uri, timestamp,
// nonce, body), computed without building the message; timestamp is in
// decimal, as sent.
func RequestDigest(method, uri string, timestamp, nonce, body []byte) [sha256.Size]byte {
	h := getHasher()
	h.str(method)
	h.str(uri)
	h.line(timestamp)
	h.line(nonce)
	h.bytes(body)
	return h.sum()
}

// hasher is a SHA-256 with a scratch buffer, pooled, that hashes the
// lines of a signed message (each followed by '\n') as they are given.
type hasher struct {
	h       hash.Hash
	scratch []byte
}

var hashers = sync.Pool{New: func() any { return &hasher{h: sha256.New(), scratch: make([]byte, 0, 256)} }}

func getHasher() *hasher { return hashers.Get().(*hasher) }

// str hashes s and a newline, through the scratch buffer (a hash takes
// bytes only), in pieces for a long s.
func (h *hasher) str(s string) {
	for len(s) > 0 {
		n := min(len(s), cap(h.scratch))
		h.scratch = append(h.scratch[:0], s[:n]...)
		h.h.Write(h.scratch)
		s = s[n:]
	}
	h.h.Write(newline)
}

// line is str for bytes the caller may hold on its stack: they are
// copied, so that they do not escape to the heap through the hash.
func (h *hasher) line(b []byte) {
	for len(b) > 0 {
		n := min(len(b), cap(h.scratch))
		h.scratch = append(h.scratch[:0], b[:n]...)
		h.h.Write(h.scratch)
		b = b[n:]
	}
	h.h.Write(newline)
}

// bytes hashes b, already on the heap, and a newline.
func (h *hasher) bytes(b []byte) {
	h.h.Write(b)
	h.h.Write(newline)
}

var newline = []byte{'\n'}

// sum returns the digest and puts h back in the pool.
func (h *hasher) sum() [sha256.Size]byte {
	var d [sha256.Size]byte
	h.scratch = h.h.Sum(h.scratch[:0])
	copy(d[:], h.scratch)
	h.h.Reset()
	if cap(h.scratch) > 4096 {
		h.scratch = make([]byte, 0, 256)
	}
	hashers.Put(h)
	return d
}

// NewNonce returns 32 upper-case hexadecimal characters from crypto/rand,
// the form of WeChat Pay's own examples.
func NewNonce() string {
	var n [32]byte
	PutNonce(&n)
	return string(n[:])
}

// PutNonce writes a nonce of NewNonce's form into dst, without
// allocating.
func PutNonce(dst *[32]byte) {
	b := randBufs.Get().(*[16]byte)
	rand.Read(b[:]) // never fails (crypto/rand, Go ≥ 1.24)
	const digits = "0123456789ABCDEF"
	for i, c := range b {
		dst[2*i], dst[2*i+1] = digits[c>>4], digits[c&15]
	}
	randBufs.Put(b)
}

// randBufs hold the random bytes of nonces: crypto/rand.Read keeps no
// reference, but its buffer escapes, so a stack array would be allocated.
var randBufs = sync.Pool{New: func() any { return new([16]byte) }}

// AuthParams are the parameters of an APIv3 Authorization header.
type AuthParams struct {
	MerchantID string // mchid
	Nonce      string // nonce_str
	Timestamp  string // timestamp, Unix seconds as sent
	Serial     string // serial_no, the merchant certificate serial
	Signature  string // signature, Base64
}

// ParseAuthorization parses an APIv3 Authorization header the way WeChat
// Pay reads it (§1.5): scheme WECHATPAY2-SHA256-RSA2048, then the five
// key="value" pairs in any order, separated by commas.
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
			return p, fmt.Errorf("wechatpay: Authorization: malformed pair %q", Truncate(k, 20))
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
			return p, fmt.Errorf("wechatpay: Authorization: unknown key %q", Truncate(k, 20))
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

// Truncate shortens s to n bytes and an ellipsis, for error messages that
// quote input.
func Truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
