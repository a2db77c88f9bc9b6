package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/internal/atomicfile"
)

var billHelp = help{
	synopsis: "bill -date YYYY-MM-DD [-kind trade|fundflow] [-o FILE] [flags]",
	text: `Downloads the merchant's trade bill (交易账单, /v3/bill/tradebill) or fund
flow bill (资金账单, /v3/bill/fundflowbill) of one day. The bill request's
answer is signed and names the file's SHA-1; the file itself is not signed
by WeChat Pay, so it is checked against that hash as it streams. It is
written to FILE under a temporary name and renamed only when the hash
matches: FILE is either the whole, checked bill or untouched. With -o -,
the bill goes to standard output (check the exit status before using it).

Progress is shown on standard error when it is a terminal, and nothing
otherwise. Exit status 3 when the file does not match its hash.`,
	example: `wechatpay bill -sandbox -date 2026-11-22
wechatpay bill -date 2026-11-22 -kind fundflow -account-type OPERATION -o fund-2026-11-22.csv`,
}

func (a *app) bill(name string, args []string) error {
	fs := a.newFlagSet(name, billHelp)
	creds := addCredFlags(fs, needSigner|needKeys)
	date := fs.String("date", "", "the bill's `DAY`, YYYY-MM-DD (required)")
	kind := fs.String("kind", "trade", "`trade` (交易账单) or fundflow (资金账单)")
	billType := fs.String("bill-type", "ALL", "trade bills: `ALL`, SUCCESS or REFUND")
	accountType := fs.String("account-type", "BASIC", "fund flow bills: `BASIC`, OPERATION or FEES")
	out := fs.String("o", "", "write the bill to `FILE` (- for standard output; default <kind>bill-<DAY>.csv)")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if *date == "" {
		return usagef("-date is required, for example -date %s", time.Now().AddDate(0, 0, -1).Format(time.DateOnly))
	}
	if _, err := time.Parse(time.DateOnly, *date); err != nil {
		return usagef("-date %q is not a day of the form YYYY-MM-DD", *date)
	}
	q := url.Values{"bill_date": {*date}}
	var path string
	switch *kind {
	case "trade":
		path = "/v3/bill/tradebill"
		q.Set("bill_type", *billType)
	case "fundflow":
		path = "/v3/bill/fundflowbill"
		q.Set("account_type", *accountType)
	default:
		return usagef("-kind must be trade or fundflow, not %q", *kind)
	}
	if *out == "" {
		*out = *kind + "bill-" + *date + ".csv"
	}
	s, err := creds.load(a, name)
	if err != nil {
		return err
	}
	defer s.close()
	ctx, cancel := context.WithTimeout(a.ctx, *timeout)
	defer cancel()

	target := s.cfg.BaseURL + path + "?" + q.Encode()
	answer, err := s.call(ctx, http.MethodGet, target, nil)
	if err != nil {
		return atHost(err, target, *timeout)
	}
	var bf wechatpay.BillFile
	if err := json.Unmarshal(answer, &bf); err != nil || bf.DownloadURL == "" {
		return fmt.Errorf("the answer to GET %s is not a bill file description (download_url, hash_type, hash_value)", path)
	}

	progress := a.progress()
	defer progress.done()
	if *out == "-" {
		err = bf.Download(ctx, s.client, io.MultiWriter(a.stdout, progress))
	} else {
		err = atomicfile.Write(*out, 0o600, func(w io.Writer) error {
			return bf.Download(ctx, s.client, io.MultiWriter(w, progress))
		})
	}
	progress.done()
	if err != nil {
		if errors.Is(err, wechatpay.ErrBillHash) {
			return &exitError{code: exitVerify, msg: "wechatpay bill: the downloaded file does not match the hash of the signed bill answer; nothing was written.\n  error: " + err.Error()}
		}
		return atHost(err, bf.DownloadURL, *timeout)
	}
	if *out != "-" {
		fmt.Fprintf(a.stdout, "%s: %d bytes, %s %s checked\n", *out, progress.n, bf.HashType, bf.HashValue)
	}
	return nil
}

// progressWriter counts bytes and, on a terminal, shows them.
type progressWriter struct {
	w     io.Writer // nil: count only
	n     int64
	start time.Time
	last  time.Time
	shown bool
}

// progress returns a progress display on standard error if it is a
// terminal, and a silent counter otherwise.
func (a *app) progress() *progressWriter {
	p := &progressWriter{start: time.Now()}
	isTTY := a.isTerminal
	if isTTY == nil {
		isTTY = isTerminal
	}
	if isTTY(a.stderr) {
		p.w = a.stderr
	}
	return p
}

// isTerminal reports whether w is a character device, as a terminal is
// (no dependency needed for this much).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.n += int64(len(b))
	if p.w != nil {
		if now := time.Now(); now.Sub(p.last) >= 100*time.Millisecond {
			p.last = now
			p.show(now)
		}
	}
	return len(b), nil
}

func (p *progressWriter) show(now time.Time) {
	rate := float64(p.n) / max(now.Sub(p.start).Seconds(), 1e-3)
	fmt.Fprintf(p.w, "\r\x1b[Kdownloading: %s (%s/s)", sizeText(float64(p.n)), sizeText(rate))
	p.shown = true
}

// done ends the progress line, once.
func (p *progressWriter) done() {
	if p.w != nil && p.shown {
		p.show(time.Now())
		fmt.Fprintln(p.w)
		p.shown = false
		p.w = nil
	}
}

func sizeText(n float64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", n/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", n/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", n/(1<<10))
	}
	return fmt.Sprintf("%.0f B", n)
}
