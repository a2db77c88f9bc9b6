package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/wxpaykit/wechatpay/apiv2"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/internal/atomicfile"
	"github.com/wxpaykit/wechatpay/internal/wire"
)

var certsHelp = help{
	synopsis: "certs [-o DIR] [flags]",
	text: `Downloads the merchant's WeChat Pay platform certificates, decrypts them with
the APIv3 key, checks them (serial, RSA key, validity, and the signature of
the download itself), and writes each to DIR/wechatpay_<SERIAL>.pem. Each file
is written under a temporary name and renamed, so an interrupted run never
leaves half a file. Prints one line per certificate: serial, not-before,
not-after, and which one is the newest.

With -v2, the certificates come from the APIv2 endpoint /risk/getcertficates
instead, signed with the APIv2 key (-apiv2-key or WECHATPAY_APIV2_KEY) and
still decrypted with the APIv3 key: for merchants wired for APIv2 only.`,
	example: `wechatpay certs -sandbox -o /tmp/certs
wechatpay certs -sandbox -v2 -o /tmp/certs
wechatpay certs -mchid 1900000001 -serial 3775B6A45ACD588826D15E583A95F5DD12345678 -key apiclient_key.pem -apiv3-key "$WECHATPAY_APIV3_KEY" -o certs/`,
}

func (a *app) certs(name string, args []string) error {
	fs := a.newFlagSet(name, certsHelp)
	creds := addCredFlags(fs, needSigner|needAPIv3)
	dir := fs.String("o", ".", "write the certificates into `DIR`")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	v2 := fs.Bool("v2", false, "download with the APIv2 endpoint /risk/getcertficates")
	apiv2Key := fs.String("apiv2-key", "", "the APIv2 `KEY` for -v2 (default $WECHATPAY_APIV2_KEY)")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	// The download runs detached from ctx, bounded by FetchTimeout: the
	// same bound, so that -timeout is what the user waits.
	store, err := wechatpay.NewStore(wechatpay.StoreOptions{FetchTimeout: *timeout})
	if err != nil {
		return err
	}
	defer store.Close()
	creds.store = store
	s, err := creds.load(a, name)
	if err != nil {
		return err
	}
	defer s.close()
	ctx, cancel := context.WithTimeout(a.ctx, *timeout)
	defer cancel()
	if *v2 {
		key := *apiv2Key
		if key == "" {
			key = os.Getenv("WECHATPAY_APIV2_KEY")
		}
		if key == "" && s.srv != nil {
			key = s.srv.Merchant().APIv2Key
		}
		if len(key) != 32 {
			return &credError{cmd: name, problems: []string{fmt.Sprintf("-v2 needs the 32-byte APIv2 key: -apiv2-key KEY or WECHATPAY_APIV2_KEY (got %d bytes)", len(key))}}
		}
		got, err := apiv2.FetchCertificates(ctx, apiv2.Config{
			MerchantID: s.cfg.MerchantID, APIv2Key: key, APIv3Key: s.cfg.APIv3Key,
			BaseURL: s.cfg.BaseURL, Base: s.cfg.Base,
		})
		if err != nil {
			return atHost(err, s.cfg.BaseURL, *timeout)
		}
		if err := store.AddCertificates(s.cfg.MerchantID, got); err != nil {
			return err
		}
	} else if err := store.Refresh(ctx, s.cfg.MerchantID); err != nil {
		return atHost(err, s.cfg.BaseURL, *timeout)
	}
	certs := store.Certificates(s.cfg.MerchantID) // newest expiry first
	if len(certs) == 0 {
		return errors.New("the download succeeded but listed no usable certificate")
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERIAL\tNOT BEFORE\tNOT AFTER\t\tFILE")
	for i, c := range certs {
		serial := wire.CertSerial(c)
		path := filepath.Join(*dir, "wechatpay_"+serial+".pem")
		if err := atomicfile.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), 0o644); err != nil {
			return err
		}
		mark := ""
		if i == 0 {
			mark = "newest"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", serial, c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339), mark, path)
	}
	return tw.Flush()
}

// parseCertFile is used by verify: it reads one PEM certificate.
func parseCertFile(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return wire.ParseCertificatePEM(data)
}
