package wechatpaytest

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// bills serves bill requests and bill files: the trade bill of the
// simulated day (tradebill.go), and generated bills of any size for
// download tests.
type bills struct {
	core   *core
	orders *orders
	url    string // the server's base URL, where download_url leads

	size      atomic.Int64 // bytes of generated bill files; 0 means defaultBillSize
	flip      atomic.Int64 // offset+1 of the byte FlipBillByte spoils; 0 means none
	hashes    sync.Map     // bill token → hex SHA-1 of the generated file
	real      sync.Map     // token → simBill, bills of the simulated day
	realCount atomic.Int64 // entries in real
}

// Paths of the bill routes.
const (
	billFilePath     = "/v3/billdownload/file"
	tradeBillPath    = "/v3/bill/tradebill"
	fundFlowBillPath = "/v3/bill/fundflowbill"
)

// routes are the bill routes.
func (b *bills) routes() []route {
	return []route{
		{"GET " + tradeBillPath, failable, b.serveTradeBill},
		{"GET " + fundFlowBillPath, signed, b.serveBill},
		{"GET " + billFilePath, raw, b.serveBillFile},
	}
}

// defaultBillSize is the size of generated bill files unless SetBillSize
// says otherwise.
const defaultBillSize = 1 << 20

// billSpec identifies a generated bill file. Its token form is what the
// download URL carries.
type billSpec struct {
	merchantID, kind, date string
	size                   int64
}

func (b billSpec) token() string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%s|%s|%s|%d", b.merchantID, b.kind, b.date, b.size))
}

func parseBillToken(tok string) (billSpec, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return billSpec{}, false
	}
	parts := strings.Split(string(raw), "|")
	if len(parts) != 4 {
		return billSpec{}, false
	}
	size, err := strconv.ParseInt(parts[3], 10, 64)
	if err != nil || size < 0 {
		return billSpec{}, false
	}
	return billSpec{parts[0], parts[1], parts[2], size}, true
}

// serveBill answers GET /v3/bill/tradebill and /v3/bill/fundflowbill with
// the download_url, hash_type and hash_value of a generated bill.
func (b *bills) serveBill(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	date := q.Get("bill_date")
	if _, err := time.Parse(time.DateOnly, date); err != nil {
		WriteError(w, http.StatusBadRequest, "PARAM_ERROR", "bill_date格式错误，应为YYYY-MM-DD")
		return
	}
	kind := q.Get("bill_type")
	if r.URL.Path == fundFlowBillPath {
		kind = "FUND_" + q.Get("account_type")
	}
	size := b.size.Load()
	if size == 0 {
		size = defaultBillSize
	}
	spec := billSpec{MerchantIDFrom(r.Context()), kind, date, size}
	tok := spec.token()
	sum, ok := b.hashes.Load(tok)
	if !ok {
		h := sha1.New()
		io.CopyBuffer(h, newBillReader(spec, -1), make([]byte, 64<<10))
		sum, _ = b.hashes.LoadOrStore(tok, hex.EncodeToString(h.Sum(nil)))
	}
	writeJSON(w, map[string]string{
		"hash_type":    "SHA1",
		"hash_value":   sum.(string),
		"download_url": b.url + billFilePath + "?token=" + tok,
	})
}

// serveBillFile streams a generated bill, unsigned as WeChat Pay sends
// bill files (docs/protocol.md §2.5), to the merchant that requested it.
func (b *bills) serveBillFile(w http.ResponseWriter, r *http.Request) {
	m := b.core.merchantOf(r)
	if v, ok := b.real.Load(r.URL.Query().Get("token")); ok {
		bill := v.(simBill)
		if bill.merchantID != m.info.ID {
			b.core.writeError(w, r, m, http.StatusForbidden, "NO_AUTH", "无权下载该账单", nil)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Length", strconv.Itoa(len(bill.data)))
		h.Set("Request-Id", newRequestID())
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			w.Write(bill.data)
		}
		return
	}
	spec, ok := parseBillToken(r.URL.Query().Get("token"))
	if !ok {
		b.core.writeError(w, r, m, http.StatusBadRequest, "PARAM_ERROR", "token无效", nil)
		return
	}
	if spec.merchantID != m.info.ID {
		b.core.writeError(w, r, m, http.StatusForbidden, "NO_AUTH", "无权下载该账单", nil)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(spec.size, 10))
	h.Set("Request-Id", newRequestID())
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	io.CopyBuffer(w, newBillReader(spec, b.flip.Load()-1), make([]byte, 64<<10))
}

// billReader generates a bill file: a header line, then numbered rows
// shaped like WeChat Pay's trade bill, cut at exactly size bytes. The
// content depends only on the spec.
type billReader struct {
	header []byte
	row    []byte // the current row
	rowN   int64  // index of row; -1 before the first
	size   int64
	pos    int64
	flip   int64 // offset of the byte to spoil, or -1
	// Offsets in row of the digits that change from row to row.
	timeAt, txAt, orderAt int
}

const (
	txDigits    = 26
	orderDigits = 17
)

func newBillReader(spec billSpec, flip int64) *billReader {
	header := "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,商品名称,费率\r\n"
	prefix := "`" + spec.date + " "
	row := prefix + "00:00:00,`wx0000sandbox0000,`" + spec.merchantID + ",`0,`,`42" + strings.Repeat("0", txDigits) +
		",`S" + strings.Repeat("0", orderDigits) + ",`oSandboxUser000000000000000,`JSAPI,`SUCCESS,`OTHERS,`CNY,`0.01,`0.00,`sandbox " + spec.kind + ",`0.60%\r\n"
	b := &billReader{
		header: []byte(header),
		row:    []byte(row),
		rowN:   -1,
		size:   spec.size,
		flip:   flip,
		timeAt: len(prefix),
	}
	b.txAt = strings.Index(row, ",`42") + 4
	b.orderAt = strings.Index(row, ",`S") + 3
	return b
}

func putDigits(b []byte, v int64) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = '0' + byte(v%10)
		v /= 10
	}
}

// setRow makes b.row the row with index n.
func (b *billReader) setRow(n int64) {
	sec := n % 86400
	t := b.row[b.timeAt:]
	putDigits(t[0:2], sec/3600)
	putDigits(t[3:5], sec/60%60)
	putDigits(t[6:8], sec%60)
	putDigits(b.row[b.txAt:b.txAt+txDigits], n)
	putDigits(b.row[b.orderAt:b.orderAt+orderDigits], n)
	b.rowN = n
}

func (b *billReader) Read(p []byte) (int, error) {
	if b.pos >= b.size {
		return 0, io.EOF
	}
	if rest := b.size - b.pos; int64(len(p)) > rest {
		p = p[:rest]
	}
	start, n := b.pos, 0
	for n < len(p) {
		var src []byte
		if b.pos < int64(len(b.header)) {
			src = b.header[b.pos:]
		} else {
			off := b.pos - int64(len(b.header))
			row := off / int64(len(b.row))
			if row != b.rowN {
				b.setRow(row)
			}
			src = b.row[off%int64(len(b.row)):]
		}
		k := copy(p[n:], src)
		n += k
		b.pos += int64(k)
	}
	if b.flip >= start && b.flip < b.pos {
		p[b.flip-start] ^= 0x01
	}
	return n, nil
}

// SetBillSize sets the size in bytes of the bill files the sandbox
// generates for bill requests made from now on (/v3/bill/tradebill,
// /v3/bill/fundflowbill). Zero means the default, 1 MiB. Files are
// generated on the fly from the merchant, date and size, so any size
// costs no memory.
func (s *Server) SetBillSize(n int64) {
	if n < 0 {
		panic("wechatpaytest: SetBillSize: negative size")
	}
	s.bills.size.Store(n)
}

// FlipBillByte makes every later bill file download flip the lowest bit of
// the byte at offset, while bill requests keep announcing the hash of the
// unspoilt file: a download corrupted on the way. A negative offset turns
// it off.
func (s *Server) FlipBillByte(offset int64) {
	if offset < 0 {
		s.bills.flip.Store(0)
		return
	}
	s.bills.flip.Store(offset + 1)
}
