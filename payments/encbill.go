package payments

import (
	"bufio"
	"cmp"
	"compress/gzip"
	"context"
	"crypto"
	"crypto/aes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/internal/gcmstream"
	"github.com/wxpaykit/wechatpay/internal/sm3"
	"github.com/wxpaykit/wechatpay/internal/wire"
)

// Encrypted bills (docs/protocol.md §19): the fund-flow bills of a
// service provider's sub-merchants and of a platform's second-level
// merchants come encrypted, each part of the file one AES-256-GCM message
// whose key is RSA-OAEP-encrypted for the merchant.

// AlgorithmAESGCM is the only bill encryption algorithm this package
// asks for and opens; WeChat Pay's other choice, SM4_GCM, needs SM4,
// which the standard library lacks.
const AlgorithmAESGCM = "AEAD_AES_256_GCM"

// BillURLLifetime is how long a bill's download URLs work after WeChat
// Pay answered the bill request.
const BillURLLifetime = 5 * time.Minute

// ErrBillDecrypt is returned (wrapped) when a bill part does not
// authenticate: its key, its nonce or its bytes are not what WeChat Pay
// encrypted. Nothing of that part, or of any later part, was written.
var ErrBillDecrypt = errors.New("wechatpay/payments: encrypted bill part does not authenticate")

// SubMerchantFundFlowBillRequest asks for the fund-flow bill of one
// sub-merchant's account on one day.
type SubMerchantFundFlowBillRequest struct {
	// SubMchID is the sub-merchant; empty means the Client's
	// SubMerchantID.
	SubMchID string
	// BillDate is the day, "2006-01-02", within the last three months.
	BillDate string
	// AccountType is BASIC, OPERATION, FEES or DEPOSIT. Required.
	AccountType string
	// Gzip asks for the file gzip-compressed (tar_type GZIP); Download
	// decompresses it unless told not to.
	Gzip bool
}

// EcommerceFundFlowBillRequest asks for the fund-flow bill of a
// platform's second-level merchants on one day.
type EcommerceFundFlowBillRequest struct {
	BillDate string
	// AccountType is ALL (the default when empty), the only value
	// WeChat Pay takes.
	AccountType string
	Gzip        bool
}

// EncryptedBill is the answer to an encrypted bill request: the parts of
// the file, to be downloaded within BillURLLifetime of Fetched.
type EncryptedBill struct {
	DownloadBillCount int                 `json:"download_bill_count"`
	DownloadBillList  []EncryptedBillPart `json:"download_bill_list"`
	// Gzip records that the file was asked for compressed.
	Gzip bool `json:"-"`
	// Fetched is when the answer arrived; the URLs expire
	// BillURLLifetime later. Zero means unknown: no deadline is set.
	Fetched time.Time `json:"-"`
}

// EncryptedBillPart is one part of an encrypted bill.
type EncryptedBillPart struct {
	BillSequence int    `json:"bill_sequence"` // 1, 2, ...: the order of the parts
	DownloadURL  string `json:"download_url"`
	EncryptKey   string `json:"encrypt_key"` // Base64 RSA-OAEP ciphertext of the AES key
	Nonce        string `json:"nonce"`       // its bytes are the GCM nonce
	HashType     string `json:"hash_type"`   // SHA1 (as served), SHA256 or SM3
	HashValue    string `json:"hash_value"`  // hex digest of the downloaded (encrypted) part
}

// SubMerchantFundFlowBill asks for a sub-merchant's fund-flow bill (GET
// /v3/bill/sub-merchant-fundflowbill, algorithm AEAD_AES_256_GCM) and
// returns its parts; download them with EncryptedBill.Download within
// BillURLLifetime.
func (c *Client) SubMerchantFundFlowBill(ctx context.Context, req SubMerchantFundFlowBillRequest) (*EncryptedBill, error) {
	if err := checkDate(req.BillDate); err != nil {
		return nil, err
	}
	sub := req.SubMchID
	if sub == "" && c != nil {
		sub = c.SubMerchantID
	}
	if sub == "" || req.AccountType == "" {
		return nil, errors.New("wechatpay/payments: SubMerchantFundFlowBill needs a sub_mchid and an account_type")
	}
	q := query("sub_mchid", sub, "bill_date", req.BillDate, "account_type", req.AccountType,
		"algorithm", AlgorithmAESGCM, "tar_type", gzipTar(req.Gzip))
	return c.encryptedBill(ctx, "/v3/bill/sub-merchant-fundflowbill"+q, req.Gzip)
}

// EcommerceFundFlowBill asks for a platform's second-level merchants'
// fund-flow bill (GET /v3/ecommerce/bill/fundflowbill, algorithm
// AEAD_AES_256_GCM); download it with EncryptedBill.Download.
func (c *Client) EcommerceFundFlowBill(ctx context.Context, req EcommerceFundFlowBillRequest) (*EncryptedBill, error) {
	if err := checkDate(req.BillDate); err != nil {
		return nil, err
	}
	q := query("bill_date", req.BillDate, "account_type", cmp.Or(req.AccountType, "ALL"),
		"algorithm", AlgorithmAESGCM, "tar_type", gzipTar(req.Gzip))
	return c.encryptedBill(ctx, "/v3/ecommerce/bill/fundflowbill"+q, req.Gzip)
}

func gzipTar(on bool) string {
	if on {
		return "GZIP"
	}
	return ""
}

func (c *Client) encryptedBill(ctx context.Context, path string, gz bool) (*EncryptedBill, error) {
	var b EncryptedBill
	if err := c.do(ctx, http.MethodGet, path, nil, &b); err != nil {
		return nil, err
	}
	b.Gzip, b.Fetched = gz, time.Now()
	return &b, nil
}

// Download is (&EncryptedBillDownload{HTTP: client}).Run(ctx, b, w).
func (b *EncryptedBill) Download(ctx context.Context, client *http.Client, w io.Writer) error {
	return (&EncryptedBillDownload{HTTP: client}).Run(ctx, b, w)
}

// EncryptedBillDownload downloads, authenticates and decrypts encrypted
// bills. Its zero value with HTTP set is ready to use; it is safe for
// concurrent use.
//
// How it keeps plaintext safe: GCM authenticates a message only once its
// last byte is read, and a part may be gigabytes, so no part is held in
// memory. Each part streams to a private temporary file (created 0600 and
// unlinked at once where the system allows), its hash is checked as it
// arrives, and its GCM tag is checked by reading the file once. Only when
// every part has passed both checks is anything decrypted: the parts are
// then read back in bill_sequence order, decrypted, gunzipped when the
// bill is compressed (parts may split the gzip stream anywhere) and
// written to w. A part that fails either check stops the download before
// a single byte reaches w. All parts are fetched within BillURLLifetime
// of the bill request, before the slower decryption.
type EncryptedBillDownload struct {
	// HTTP sends the downloads. Required; its Transport must be a
	// *wechatpay.Transport (it signs them).
	HTTP *http.Client
	// Key decrypts each part's encrypt_key: the merchant's API private
	// key (that of the service provider or platform). Nil means the
	// Signer key of HTTP's *wechatpay.Transport. A key that can sign
	// but not decrypt is an error saying so.
	Key crypto.Signer
	// TempDir holds the parts while they are checked. Empty means
	// os.TempDir(). It needs room for the whole encrypted bill.
	TempDir string
	// MaxPartSize bounds one downloaded part. Zero means 32 GiB
	// (WeChat Pay splits bills above about 16 GB uncompressed).
	MaxPartSize int64
	// Parallel is how many parts download at once (WeChat Pay advises
	// concurrent downloads). Zero means 4.
	Parallel int
	// Raw leaves a gzip bill compressed.
	Raw bool
}

// String describes d without its key.
func (d EncryptedBillDownload) String() string {
	key := "the Transport's"
	if d.Key != nil {
		key = "set"
	}
	return fmt.Sprintf("payments.EncryptedBillDownload{Key: %s, TempDir: %q, MaxPartSize: %d, Parallel: %d, Raw: %t}",
		key, d.TempDir, d.MaxPartSize, d.Parallel, d.Raw)
}

// GoString is String, so that %#v does not print the key either.
func (d EncryptedBillDownload) GoString() string { return d.String() }

// LogValue describes d to log/slog without its key.
func (d EncryptedBillDownload) LogValue() slog.Value {
	return slog.GroupValue(slog.Bool("key", d.Key != nil), slog.String("temp_dir", d.TempDir), slog.Bool("raw", d.Raw))
}

// Run downloads bill b and writes its plaintext to w. Errors: a part
// whose hash differs wraps wechatpay.ErrBillHash; one whose tag does not
// verify wraps ErrBillDecrypt; a non-2xx answer is the
// *wechatpay.APIError of wechatpay.CheckResponse. On any error nothing
// was written to w, except when writing to w or gunzipping the
// authenticated plaintext fails midway.
func (d *EncryptedBillDownload) Run(ctx context.Context, b *EncryptedBill, w io.Writer) error {
	if d == nil || d.HTTP == nil {
		return errors.New("wechatpay/payments: bill download needs an HTTP client")
	}
	if b == nil {
		return errors.New("wechatpay/payments: bill download: nil bill")
	}
	parts, err := orderedParts(b)
	if err != nil {
		return err
	}
	key, err := d.decrypter()
	if err != nil {
		return err
	}
	keys := make([][]byte, len(parts))
	for i, p := range parts {
		k, err := wechatpay.DecryptOAEP(key, p.EncryptKey)
		if err != nil {
			return fmt.Errorf("wechatpay/payments: bill part %d: decrypting encrypt_key with the merchant key: %w", p.BillSequence, err)
		}
		if len(k) != 32 {
			return fmt.Errorf("wechatpay/payments: bill part %d: encrypt_key holds a %d-byte key; AEAD_AES_256_GCM needs 32", p.BillSequence, len(k))
		}
		keys[i] = k
	}

	// Phase 1, within the URLs' life: fetch and check every part.
	dctx := ctx
	if !b.Fetched.IsZero() {
		var cancel context.CancelFunc
		dctx, cancel = context.WithDeadline(ctx, b.Fetched.Add(BillURLLifetime))
		defer cancel()
	}
	files := make([]*os.File, len(parts))
	defer func() {
		for _, f := range files {
			if f != nil {
				f.Close()
				os.Remove(f.Name())
			}
		}
	}()
	g, gctx := errgroup.WithContext(dctx)
	g.SetLimit(positiveOr(d.Parallel, 4))
	for i := range parts {
		f, err := os.CreateTemp(d.TempDir, "wechatpay-bill-*")
		if err != nil {
			return fmt.Errorf("wechatpay/payments: bill download: %w", err)
		}
		files[i] = f
		os.Remove(f.Name()) // private from here on where the system allows; Close removes it otherwise
	}
	for i, p := range parts {
		g.Go(func() error { return d.fetch(gctx, p, keys[i], files[i]) })
	}
	if err := g.Wait(); err != nil {
		if dctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
			return fmt.Errorf("wechatpay/payments: bill download: the download URLs expired (%s after the bill request): %w", BillURLLifetime, err)
		}
		return err
	}

	// Phase 2: every part authenticated; decrypt them in order.
	readers := make([]io.Reader, len(parts))
	for i, f := range files {
		info, err := f.Stat()
		if err != nil {
			return fmt.Errorf("wechatpay/payments: bill download: %w", err)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("wechatpay/payments: bill download: %w", err)
		}
		block, _ := aes.NewCipher(keys[i])
		r, err := gcmstream.NewReader(block, []byte(parts[i].Nonce), io.LimitReader(bufio.NewReaderSize(f, 64<<10), info.Size()-gcmstream.TagSize))
		if err != nil {
			return err
		}
		readers[i] = r
	}
	var plain io.Reader = io.MultiReader(readers...)
	if b.Gzip && !d.Raw {
		zr, err := gzip.NewReader(plain) // multistream: gzip members may follow each other
		if err != nil {
			return fmt.Errorf("wechatpay/payments: bill download: the authenticated bill is not gzip data: %w", err)
		}
		defer zr.Close()
		plain = zr
	}
	if _, err := io.CopyBuffer(w, plain, make([]byte, 64<<10)); err != nil {
		return fmt.Errorf("wechatpay/payments: bill download: writing the bill: %w", err)
	}
	return nil
}

func (d *EncryptedBillDownload) decrypter() (crypto.Decrypter, error) {
	key := d.Key
	if key == nil {
		t, ok := d.HTTP.Transport.(*wechatpay.Transport)
		if !ok || t.Signer == nil || t.Signer.Key == nil {
			return nil, errors.New("wechatpay/payments: decrypting a bill's key needs the merchant key: set EncryptedBillDownload.Key, or use a *wechatpay.Transport as the HTTP client's Transport")
		}
		key = t.Signer.Key
	}
	dec, ok := key.(crypto.Decrypter)
	if !ok {
		return nil, fmt.Errorf("wechatpay/payments: the merchant key (%T) can sign but not decrypt; a bill's encrypt_key needs a crypto.Decrypter for the same key", key)
	}
	return dec, nil
}

// maxBillParts bounds the parts of one bill, each a temporary file held
// open until the end: WeChat Pay splits at about 16 GB, so 100 parts are
// well over a terabyte.
const maxBillParts = 100

// orderedParts checks the part list and sorts it by bill_sequence.
func orderedParts(b *EncryptedBill) ([]EncryptedBillPart, error) {
	parts := slices.Clone(b.DownloadBillList)
	if len(parts) == 0 {
		return nil, errors.New("wechatpay/payments: encrypted bill has no parts")
	}
	if len(parts) > maxBillParts {
		return nil, fmt.Errorf("wechatpay/payments: encrypted bill lists %d parts, more than the %d this package opens at once", len(parts), maxBillParts)
	}
	if b.DownloadBillCount != 0 && b.DownloadBillCount != len(parts) {
		return nil, fmt.Errorf("wechatpay/payments: encrypted bill announces %d parts and lists %d", b.DownloadBillCount, len(parts))
	}
	slices.SortFunc(parts, func(x, y EncryptedBillPart) int { return cmp.Compare(x.BillSequence, y.BillSequence) })
	for i, p := range parts {
		if p.BillSequence != i+1 {
			return nil, fmt.Errorf("wechatpay/payments: encrypted bill parts are numbered %v; want 1 to %d", seqs(parts), len(parts))
		}
		if p.DownloadURL == "" || p.EncryptKey == "" || p.Nonce == "" || p.HashValue == "" {
			return nil, fmt.Errorf("wechatpay/payments: encrypted bill part %d lacks its download_url, encrypt_key, nonce or hash_value", p.BillSequence)
		}
	}
	return parts, nil
}

func positiveOr[T int | int64](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

func seqs(parts []EncryptedBillPart) []int {
	s := make([]int, len(parts))
	for i, p := range parts {
		s[i] = p.BillSequence
	}
	return s
}

// partError says which part an error of the Transport or of WeChat Pay
// concerns, with one prefix in the chain.
type partError struct {
	seq int
	err error
}

func (e partError) Error() string {
	return fmt.Sprintf("wechatpay/payments: bill part %d: %s", e.seq, strings.TrimPrefix(e.err.Error(), "wechatpay: "))
}

func (e partError) Unwrap() error { return e.err }

func billHash(t string) (hash.Hash, error) {
	switch strings.ToUpper(t) {
	case "SHA1":
		if wire.SHA1Refused() {
			return nil, wire.ErrFIPSOnly("bill download", "a SHA-1 check of the file")
		}
		return sha1.New(), nil
	case "SHA256", "SHA-256":
		return sha256.New(), nil
	case "SM3":
		return sm3.New(), nil
	}
	return nil, fmt.Errorf("wechatpay/payments: bill part: unsupported hash_type %q", wire.Truncate(t, 20))
}

// fetch downloads part p into f, checking its hash as it arrives and then
// its GCM tag by reading f back.
func (d *EncryptedBillDownload) fetch(ctx context.Context, p EncryptedBillPart, key []byte, f *os.File) error {
	h, err := billHash(p.HashType)
	if err != nil {
		return err
	}
	want, err := hex.DecodeString(p.HashValue)
	if err != nil || len(want) != h.Size() {
		return fmt.Errorf("wechatpay/payments: bill part %d: hash_value is not a hex %s digest", p.BillSequence, strings.ToUpper(p.HashType))
	}
	// The file is authenticated by its hash and its GCM tag, not by a
	// signature: WeChat Pay does not sign it.
	req, err := http.NewRequestWithContext(wechatpay.WithoutResponseVerification(ctx), http.MethodGet, p.DownloadURL, nil)
	if err != nil {
		return fmt.Errorf("wechatpay/payments: bill part %d: %w", p.BillSequence, err)
	}
	req.Header.Set("Accept-Encoding", "identity") // the hash covers the bytes as served
	resp, err := d.HTTP.Do(req)
	if err != nil {
		return partError{p.BillSequence, err}
	}
	defer resp.Body.Close()
	if err := wechatpay.CheckResponse(resp); err != nil {
		return partError{p.BillSequence, err}
	}
	limit := positiveOr(d.MaxPartSize, 32<<30)
	if resp.ContentLength > limit {
		return fmt.Errorf("wechatpay/payments: bill part %d announces %d bytes, more than the %d allowed", p.BillSequence, resp.ContentLength, limit)
	}
	n, err := io.CopyBuffer(io.MultiWriter(f, h), io.LimitReader(resp.Body, limit+1), make([]byte, 64<<10))
	if err != nil {
		return fmt.Errorf("wechatpay/payments: bill part %d: after %d bytes: %w", p.BillSequence, n, err)
	}
	if n > limit {
		return fmt.Errorf("wechatpay/payments: bill part %d has more than the %d bytes allowed", p.BillSequence, limit)
	}
	if got := h.Sum(nil); !slices.Equal(got, want) {
		return fmt.Errorf("%w: bill part %d: %s of the %d bytes received is %x, the bill request announced %s",
			wechatpay.ErrBillHash, p.BillSequence, strings.ToUpper(p.HashType), n, got, strings.ToLower(p.HashValue))
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("wechatpay/payments: bill part %d: %w", p.BillSequence, err)
	}
	block, _ := aes.NewCipher(key)
	if err := gcmstream.Verify(block, []byte(p.Nonce), bufio.NewReaderSize(f, 64<<10), n); err != nil {
		if errors.Is(err, gcmstream.ErrAuth) {
			return fmt.Errorf("%w: part %d (%d bytes)", ErrBillDecrypt, p.BillSequence, n)
		}
		return fmt.Errorf("wechatpay/payments: bill part %d: %w", p.BillSequence, err)
	}
	return nil
}
