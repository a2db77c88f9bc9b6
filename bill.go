package wechatpay

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strings"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

// BillFile is the answer of the bill requests (/v3/bill/tradebill,
// /v3/bill/fundflowbill and the like): where to download the file and the
// hash it must have.
type BillFile struct {
	HashType    string `json:"hash_type"`  // "SHA1"
	HashValue   string `json:"hash_value"` // hex
	DownloadURL string `json:"download_url"`
}

// Download is DownloadBill for b.
func (b BillFile) Download(ctx context.Context, client *http.Client, w io.Writer) error {
	return DownloadBill(ctx, client, b.DownloadURL, b.HashType, b.HashValue, w)
}

// DownloadBill downloads a bill file from downloadURL (the download_url of
// a bill request, /v3/billdownload/file?token=...) with client, whose
// Transport must be a *Transport that signs the request, and streams it to
// w while hashing it; the file is never held in memory. The response of
// this endpoint is not signed by WeChat Pay (docs/protocol.md §2.5): the file is
// authenticated only by comparing its hash with hashValue, which came in
// the signed answer to the bill request. hashType is "SHA1" (what WeChat
// Pay sends) or "SHA256", in any case.
//
// w receives the bytes as they arrive, before the hash can be checked: if
// DownloadBill returns an error, discard what it wrote (write to a
// temporary file and rename it on success). A mismatch is an error
// wrapping ErrBillHash; a non-2xx answer is the *APIError of CheckResponse.
func DownloadBill(ctx context.Context, client *http.Client, downloadURL, hashType, hashValue string, w io.Writer) error {
	var h hash.Hash
	switch strings.ToUpper(hashType) {
	case "SHA1":
		if wire.SHA1Refused() {
			return wire.ErrFIPSOnly("bill download", "a SHA-1 check of the file")
		}
		h = sha1.New()
	case "SHA256", "SHA-256":
		h = sha256.New()
	default:
		return fmt.Errorf("wechatpay: bill download: unsupported hash_type %q (want SHA1 or SHA256)", wire.Truncate(hashType, 20))
	}
	want, err := hex.DecodeString(hashValue)
	if err != nil || len(want) != h.Size() {
		return fmt.Errorf("wechatpay: bill download: hash_value %q is not a hex %s digest", wire.Truncate(hashValue, 80), strings.ToUpper(hashType))
	}
	if client == nil {
		return errors.New("wechatpay: bill download: nil client")
	}
	// The file is authenticated by its hash, not by a signature.
	req, err := http.NewRequestWithContext(WithoutResponseVerification(ctx), http.MethodGet, downloadURL, nil)
	if err != nil {
		return fmt.Errorf("wechatpay: bill download: %w", err)
	}
	// The hash covers the bytes as served: no transparent decompression.
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := CheckResponse(resp); err != nil {
		return err
	}
	n, err := io.CopyBuffer(io.MultiWriter(w, h), resp.Body, make([]byte, 64<<10))
	if err != nil {
		return fmt.Errorf("wechatpay: bill download: after %d bytes: %w", n, err)
	}
	if got := h.Sum(nil); !bytes.Equal(got, want) {
		return fmt.Errorf("%w: %s of the %d bytes received is %x, the bill request announced %s (Request-ID %s)",
			ErrBillHash, strings.ToUpper(hashType), n, got, strings.ToLower(hashValue), wire.Truncate(resp.Header.Get(wire.HeaderRequestID), 64))
	}
	return nil
}
