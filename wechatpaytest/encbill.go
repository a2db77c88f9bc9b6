package wechatpaytest

import (
	"bytes"
	"compress/gzip"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The encrypted bill part of the simulator: a service provider's
// sub-merchant fund-flow bill (GET /v3/bill/sub-merchant-fundflowbill) and
// a platform's (GET /v3/ecommerce/bill/fundflowbill), served as WeChat Pay
// serves them (docs/protocol.md §19): the file, gzipped when tar_type is
// GZIP, is cut into parts; each part is one AES-256-GCM message (empty
// associated data, the bytes of a 16-character nonce, a random 32-byte
// key RSA-OAEP-encrypted with the merchant's certificate key), listed
// with the SHA-1 of its encrypted bytes and an unsigned download URL that
// works for five minutes.

const (
	subMerchantFundFlowPath = "/v3/bill/sub-merchant-fundflowbill"
	ecommerceFundFlowPath   = "/v3/ecommerce/bill/fundflowbill"
	encryptedBillFilePath   = "/v3/bill/downloadurl"
	encryptedBillLife       = 5 * time.Minute
)

// encryptedBills is the part: the services it reaches, fixed by
// NewServer, then its state under its lock.
type encryptedBills struct {
	url    string // the server's base URL, for download URLs
	clock  *simClock
	core   *core
	fields *sensitiveFields

	mu       sync.Mutex // guards the fields below
	partSize int        // bytes of (gzipped) bill per part; 0 means one part
	content  []byte     // the bill text; nil means a generated one
	tamper   map[int]bool
	files    map[string]encryptedFile // token → part
}

// encryptedFile is one served part.
type encryptedFile struct {
	owner   string
	data    []byte
	expires time.Time
}

// EncryptedBills sets how the sandbox serves later encrypted bills
// (SetEncryptedBills).
type EncryptedBills struct {
	// PartSize cuts a bill into parts of at most this many bytes of
	// (compressed) bill each, as WeChat Pay splits bills above about
	// 16 GB; 0 means one part.
	PartSize int
	// Content is the bill text; nil means a generated fund-flow bill.
	Content []byte
	// TamperPart, if not 0, serves part TamperPart (1, 2, ...) with one
	// byte of its ciphertext flipped. With Rehash the part's listed hash
	// is that of the flipped bytes, as if whoever changed the file could
	// also change the signed answer: only the GCM tag then tells.
	TamperPart int
	Rehash     bool
}

// SetEncryptedBills sets how later encrypted bills are served.
func (s *Server) SetEncryptedBills(o EncryptedBills) { s.ebills.set(o) }

func (d *encryptedBills) set(o EncryptedBills) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.partSize = max(o.PartSize, 0)
	d.content = bytes.Clone(o.Content)
	d.tamper = nil
	if o.TamperPart > 0 {
		d.tamper = map[int]bool{o.TamperPart: o.Rehash}
	}
}

// routes are the two bill requests and the parts' download.
func (d *encryptedBills) routes() []route {
	return []route{
		{"GET " + subMerchantFundFlowPath, signed, d.serveRequest},
		{"GET " + ecommerceFundFlowPath, signed, d.serveRequest},
		{"GET " + encryptedBillFilePath, raw, d.serveFile},
	}
}

func (d *encryptedBills) serveRequest(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	date := q.Get("bill_date")
	if _, err := time.Parse(time.DateOnly, date); err != nil {
		writeSimError(w, paramError("bill_date", "bill_date格式应为yyyy-MM-dd", date))
		return
	}
	accounts := []string{"BASIC", "OPERATION", "FEES", "DEPOSIT"}
	if r.URL.Path == ecommerceFundFlowPath {
		accounts = []string{"ALL"}
	} else if q.Get("sub_mchid") == "" {
		writeSimError(w, paramError("sub_mchid", "缺少必填参数sub_mchid", nil))
		return
	}
	if acct := q.Get("account_type"); !containsString(accounts, acct) {
		writeSimError(w, paramError("account_type", "account_type应为"+strings.Join(accounts, "、"), acct))
		return
	}
	switch q.Get("algorithm") {
	case "AEAD_AES_256_GCM":
	case "SM4_GCM":
		writeSimError(w, &simError{http.StatusBadRequest, "PARAM_ERROR", "沙箱不支持SM4_GCM", nil})
		return
	default:
		writeSimError(w, paramError("algorithm", "algorithm应为AEAD_AES_256_GCM或SM4_GCM", q.Get("algorithm")))
		return
	}
	tar := q.Get("tar_type")
	if tar != "" && tar != "GZIP" {
		writeSimError(w, paramError("tar_type", "tar_type应为GZIP", tar))
		return
	}
	caller := MerchantIDFrom(r.Context())
	d.mu.Lock()
	text, size := d.content, d.partSize
	tamper := make(map[int]bool, len(d.tamper))
	for k, v := range d.tamper {
		tamper[k] = v
	}
	d.mu.Unlock()
	if text == nil {
		text = generatedFundFlowBill(q.Get("sub_mchid"), date, q.Get("account_type"))
	}
	if tar == "GZIP" {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write(text)
		zw.Close()
		text = b.Bytes()
	}
	var chunks [][]byte
	for size > 0 && len(text) > size {
		chunks, text = append(chunks, text[:size]), text[size:]
	}
	chunks = append(chunks, text)

	list := make([]map[string]any, 0, len(chunks))
	expires := d.clock.now().Add(encryptedBillLife)
	for i, chunk := range chunks {
		seq := i + 1
		key, nonce := randomText(32), randomText(16)
		block, _ := aes.NewCipher([]byte(key))
		aead, _ := cipher.NewGCMWithNonceSize(block, len(nonce))
		ct := aead.Seal(nil, []byte(nonce), chunk, nil)
		sum := sha1.Sum(ct)
		if rehash, ok := tamper[seq]; ok {
			ct[len(ct)/2] ^= 0x01
			if rehash {
				sum = sha1.Sum(ct)
			}
		}
		encKey, err := d.fields.encrypt(caller, key)
		if err != nil {
			writeSimError(w, errSystem)
			return
		}
		token := randomText(40)
		d.mu.Lock()
		if d.files == nil {
			d.files = make(map[string]encryptedFile)
		}
		for t, f := range d.files { // forget expired parts
			if d.clock.now().After(f.expires) {
				delete(d.files, t)
			}
		}
		d.files[token] = encryptedFile{owner: caller, data: ct, expires: expires}
		d.mu.Unlock()
		list = append(list, map[string]any{
			"bill_sequence": seq,
			"download_url":  d.url + encryptedBillFilePath + "?token=" + token,
			"encrypt_key":   encKey,
			"nonce":         nonce,
			"hash_type":     "SHA1",
			"hash_value":    hex.EncodeToString(sum[:]),
		})
	}
	writeJSON(w, map[string]any{"download_bill_count": len(list), "download_bill_list": list})
}

// serveEncryptedBillFile serves a part unsigned, as WeChat Pay does.
func (d *encryptedBills) serveFile(w http.ResponseWriter, r *http.Request) {
	m := d.core.merchantOf(r)
	d.mu.Lock()
	f, ok := d.files[r.URL.Query().Get("token")]
	d.mu.Unlock()
	if !ok || f.owner != m.info.ID {
		d.core.writeError(w, r, m, http.StatusNotFound, "RESOURCE_NOT_EXISTS", "账单文件不存在", nil)
		return
	}
	if d.clock.now().After(f.expires) {
		d.core.writeError(w, r, m, http.StatusBadRequest, "INVALID_REQUEST", "下载地址已过期", nil)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(f.data)))
	w.Write(f.data)
}

// generatedFundFlowBill is a small fund-flow bill in WeChat Pay's CSV
// layout: a header, rows prefixed with a backquote, a summary.
func generatedFundFlowBill(sub, date, account string) []byte {
	var b strings.Builder
	b.WriteString("记账时间,微信支付业务单号,资金流水单号,业务名称,业务类型,收支类型,收支金额（元）,账户结余（元）,资金变更提交申请人,备注,业务凭证号\r\n")
	for i := range 20 {
		fmt.Fprintf(&b, "`%s 10:%02d:00,`42000000%02d%s,`%s%04d,`交易,`交易,`收入,`%d.00,`%d.00,`system,`%s %s,`\r\n",
			date, i, i, strings.ReplaceAll(date, "-", ""), sub, i, i+1, (i+1)*(i+2)/2, account, sub)
	}
	b.WriteString("资金流水总笔数,收入笔数,收入金额,支出笔数,支出金额\r\n`20,`20,`210.00,`0,`0.00\r\n")
	return []byte(b.String())
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
