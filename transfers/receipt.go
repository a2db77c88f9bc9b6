package transfers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/wxpaykit/wechatpay"
)

// Electronic receipts (电子回单) of SUCCESS bills that carried the user's
// name (docs/protocol.md §14). Apply once; query until FINISHED; download
// the file within the 10 minutes its URL is valid.

const receiptPath = "/v3/fund-app/mch-transfer/elecsign"

// MaxReceiptSize bounds the receipt file DownloadReceipt reads: 16 MiB, far
// above a one-page PDF.
const MaxReceiptSize = 16 << 20

// ApplyReceipt asks for the receipt of the bill with the merchant's
// out_bill_no (POST /v3/fund-app/mch-transfer/elecsign/out-bill-no).
func (c *Client) ApplyReceipt(ctx context.Context, outBillNo string) (*Receipt, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	if err := c.direct("ApplyReceipt"); err != nil {
		return nil, err
	}
	if err := checkOutBillNo(outBillNo); err != nil {
		return nil, err
	}
	var r Receipt
	body := struct {
		OutBillNo string `json:"out_bill_no"`
	}{outBillNo}
	if err := c.do(ctx, http.MethodPost, receiptPath+"/out-bill-no", body, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// QueryReceipt returns the receipt of the bill with the merchant's
// out_bill_no (GET /v3/fund-app/mch-transfer/elecsign/out-bill-no/{out_bill_no}).
func (c *Client) QueryReceipt(ctx context.Context, outBillNo string) (*Receipt, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	if err := c.direct("QueryReceipt"); err != nil {
		return nil, err
	}
	if err := checkOutBillNo(outBillNo); err != nil {
		return nil, err
	}
	var r Receipt
	if err := c.do(ctx, http.MethodGet, receiptPath+"/out-bill-no/"+outBillNo, nil, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// DownloadReceipt downloads the file of a FINISHED receipt and returns it
// once its SHA-256 matches r.HashValue, which came in the signed answer
// of QueryReceipt. WeChat Pay does not sign the file itself: the request
// is marked with wechatpay.WithoutResponseVerification, the Transport
// still signs it only for WeChat Pay's hosts, and at most MaxReceiptSize
// bytes are read. Nothing unchecked is returned.
func (c *Client) DownloadReceipt(ctx context.Context, r *Receipt) ([]byte, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	switch {
	case r == nil || r.State != ReceiptFinished || r.DownloadURL == "":
		return nil, errors.New("wechatpay/transfers: the receipt is not FINISHED with a download_url; query it again")
	case !strings.EqualFold(r.HashType, "SHA256"):
		return nil, fmt.Errorf("wechatpay/transfers: receipt hash_type %.20q: only SHA256 is supported", r.HashType)
	}
	want, err := hex.DecodeString(r.HashValue)
	if err != nil || len(want) != sha256.Size {
		return nil, fmt.Errorf("wechatpay/transfers: receipt hash_value is not a SHA-256 in hex")
	}
	req, err := http.NewRequestWithContext(wechatpay.WithoutResponseVerification(ctx), http.MethodGet, r.DownloadURL, nil)
	if err != nil {
		return nil, fmt.Errorf("wechatpay/transfers: receipt download_url: %w", err)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if err := wechatpay.CheckResponse(resp); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, io.LimitReader(resp.Body, MaxReceiptSize+1)); err != nil {
		return nil, fmt.Errorf("wechatpay/transfers: reading the receipt file: %w", err)
	}
	if buf.Len() > MaxReceiptSize {
		return nil, fmt.Errorf("wechatpay/transfers: the receipt file exceeds %d bytes", MaxReceiptSize)
	}
	sum := sha256.Sum256(buf.Bytes())
	if subtle.ConstantTimeCompare(sum[:], want) != 1 {
		return nil, fmt.Errorf("wechatpay/transfers: the receipt file does not match its SHA-256 (%d bytes received): %w", buf.Len(), wechatpay.ErrBillHash)
	}
	return buf.Bytes(), nil
}
