package main

import (
	"crypto/rsa"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/internal/wire"
)

var signHelp = help{
	synopsis: "sign -method M -url PATH [-d BODY] [-timestamp T] [-nonce N] [flags]",
	text: `Prints the signing string of a request, with every newline shown as \n at
the end of its line, then the Authorization header made from it. Compare the
signing string with the truncated_sign_message in the detail of a SIGN_ERROR
to see which line differs. Needs only -mchid, -serial and -key. Without
-timestamp and -nonce it uses the current time and a fresh nonce.`,
	example: `wechatpay sign -mchid 1900007291 -serial 408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB -key apiclient_key.pem \
    -method GET -url /v3/certificates -timestamp 1554208460 -nonce 593BEC0C930BF1AFEB40B4A08C8FB242`,
}

func (a *app) sign(name string, args []string) error {
	fs := a.newFlagSet(name, signHelp)
	creds := addCredFlags(fs, needSigner)
	method := fs.String("method", "GET", "HTTP `METHOD`")
	rawURL := fs.String("url", "", "request `PATH` with its query, as sent (a full URL is cut to its path and query)")
	var body bodyFlag
	fs.Var(&body, "d", "request `BODY`: JSON text, @FILE, or @- for standard input; signed byte for byte")
	timestamp := fs.Int64("timestamp", 0, "Unix time in seconds (default now)")
	nonce := fs.String("nonce", "", "nonce_str (default 32 random hex characters)")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if *rawURL == "" {
		return usagef("-url is required")
	}
	uri := *rawURL
	if strings.HasPrefix(uri, "http://") || strings.HasPrefix(uri, "https://") {
		u, err := url.Parse(uri)
		if err != nil {
			return usagef("-url: %v", err)
		}
		uri = u.RequestURI()
	}
	data, err := body.read(a.stdin)
	if err != nil {
		return err
	}
	s, err := creds.load(a, name)
	if err != nil {
		return err
	}
	defer s.close()

	ts := *timestamp
	if ts == 0 {
		ts = time.Now().Unix()
	}
	n := *nonce
	if n == "" {
		n = wire.NewNonce()
	}
	m := strings.ToUpper(*method)
	signer := &wechatpay.Signer{MerchantID: s.cfg.MerchantID, CertificateSerial: s.cfg.CertificateSerial, Key: s.cfg.PrivateKey}
	auth, err := signer.AuthorizationAt(m, uri, data, ts, n)
	if err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, `Signing string (each line ends in a newline, shown as \n):`)
	fmt.Fprintln(a.stdout)
	writeVisible(a.stdout, wire.RequestMessage(m, uri, ts, n, data))
	fmt.Fprintln(a.stdout)
	fmt.Fprintf(a.stdout, "Authorization: %s\n", auth)
	return nil
}

// writeVisible prints msg with each '\n' shown as a literal \n before the
// line break, and '\r' as \r, so that invisible bytes can be compared.
func writeVisible(w io.Writer, msg []byte) {
	s := strings.ReplaceAll(string(msg), "\r", `\r`)
	s = strings.ReplaceAll(s, "\n", "\\n\n")
	io.WriteString(w, s)
}

var verifyHelp = help{
	synopsis: "verify -serial S -timestamp T -nonce N -signature SIG (-cert FILE | -public-key FILE) [-d BODY]",
	text: `Verifies the signature of one WeChat Pay response or callback offline, from
the values of its Wechatpay-Serial, Wechatpay-Timestamp, Wechatpay-Nonce and
Wechatpay-Signature headers and its body, against a platform certificate
(-cert, as written by 'wechatpay certs') or the WeChat Pay public key
(-public-key, or $WECHATPAY_PUBLIC_KEY). Exit status 0 if the signature is
valid, 3 with the reason if not (serial mismatch, probe, skew, mismatch).

The timestamp is not compared with the clock unless -max-skew is given, so an
old capture can be checked; a live response must be within 5 minutes.`,
	example: `wechatpay verify -cert wechatpay_5157F09EFDC096DE15EBE81A47057A7232F1B8E1.pem \
    -serial 5157F09EFDC096DE15EBE81A47057A7232F1B8E1 -timestamp 1554209980 \
    -nonce c5ac7061fccab6bf3e254dcf98995b8c -signature 'CtcbzwtQjN8rnOXItEBJ5...' -d @body.json`,
}

func (a *app) verify(name string, args []string) error {
	fs := a.newFlagSet(name, verifyHelp)
	serial := fs.String("serial", "", "the response's Wechatpay-Serial")
	timestamp := fs.String("timestamp", "", "the response's Wechatpay-Timestamp, exactly as sent")
	nonce := fs.String("nonce", "", "the response's Wechatpay-Nonce")
	signature := fs.String("signature", "", "the response's Wechatpay-Signature (Base64)")
	certFile := fs.String("cert", "", "platform certificate PEM `FILE`")
	pubFile := fs.String("public-key", "", "WeChat Pay public key PEM `FILE`; or $WECHATPAY_PUBLIC_KEY")
	pubID := fs.String("public-key-id", "", "WeChat Pay public key ID, checked against -serial; or $WECHATPAY_PUBLIC_KEY_ID")
	var body bodyFlag
	fs.Var(&body, "d", "response `BODY`: text, @FILE, or @- for standard input (default empty, as for 204)")
	maxSkew := fs.Duration("max-skew", 0, "also fail if the timestamp is further than this from now (0: do not check; WeChat Pay clients use 5m)")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	var missing []string
	for _, f := range []struct {
		name string
		v    string
	}{{"-serial", *serial}, {"-timestamp", *timestamp}, {"-nonce", *nonce}, {"-signature", *signature}} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return usagef("missing %s (copy them from the Wechatpay-* headers)", strings.Join(missing, ", "))
	}
	if *certFile == "" && *pubFile == "" {
		*pubFile = a.getenv("WECHATPAY_PUBLIC_KEY")
	}
	if *pubID == "" {
		*pubID = a.getenv("WECHATPAY_PUBLIC_KEY_ID")
	}
	if (*certFile == "") == (*pubFile == "") {
		return usagef("give exactly one of -cert FILE (platform certificate) and -public-key FILE (WeChat Pay public key)")
	}
	data, err := body.read(a.stdin)
	if err != nil {
		return err
	}

	key, keyName, err := a.verifyKey(*certFile, *pubFile, *pubID, *serial)
	if err != nil {
		return err
	}

	fmt.Fprintln(a.stdout, `Verification string (each line ends in a newline, shown as \n):`)
	fmt.Fprintln(a.stdout)
	writeVisible(a.stdout, wire.ResponseMessage(*timestamp, *nonce, data))
	fmt.Fprintln(a.stdout)

	if strings.HasPrefix(*signature, wire.ProbePrefix) {
		return invalid("signature probe: the signature starts with WECHATPAY/SIGNTEST/, which WeChat Pay sends on purpose to check that merchants verify; rejecting it is correct")
	}
	sec, err := strconv.ParseInt(*timestamp, 10, 64)
	if err != nil {
		return invalid("malformed timestamp: %q is not a Unix time in seconds", *timestamp)
	}
	if *maxSkew > 0 {
		if d := time.Since(time.Unix(sec, 0)); d > *maxSkew || d < -*maxSkew {
			return invalid("clock skew: the timestamp is %s from now, more than -max-skew %s", d.Round(time.Second), *maxSkew)
		}
	}
	if err := wire.Verify(key, wire.ResponseMessage(*timestamp, *nonce, data), *signature); err != nil {
		return invalid("signature mismatch: %v (the body, timestamp or nonce differ from what was signed, or it was signed with another key)", strings.TrimPrefix(err.Error(), "wechatpay: "))
	}
	fmt.Fprintf(a.stdout, "valid: the signature verifies with %s\n", keyName)
	return nil
}

// verifyKey loads the key verify checks with, -cert or -public-key, and
// checks that it is the one the response names.
func (a *app) verifyKey(certFile, pubFile, pubID, serial string) (*rsa.PublicKey, string, error) {
	var key *rsa.PublicKey
	var keyName string
	if certFile != "" {
		c, err := parseCertFile(certFile)
		if err != nil {
			return nil, "", usagef("-cert %s: %v", certFile, err)
		}
		k, ok := c.PublicKey.(*rsa.PublicKey)
		if !ok {
			return nil, "", usagef("-cert %s: key is %T, want RSA", certFile, c.PublicKey)
		}
		key = k
		keyName = "platform certificate " + wire.CertSerial(c)
		if got := wire.CertSerial(c); !strings.EqualFold(got, serial) {
			return nil, "", invalid("unknown serial: the response names %s but the certificate %s has serial %s; use the certificate with that serial ('wechatpay certs' downloads them)", serial, certFile, got)
		}
		if now := time.Now(); now.After(c.NotAfter) {
			fmt.Fprintf(a.stderr, "note: the certificate expired at %s; a live response must not be signed with it\n", c.NotAfter.UTC().Format(time.RFC3339))
		}
	} else {
		if looksLikePEM(pubFile) {
			return nil, "", usagef("-public-key (or $WECHATPAY_PUBLIC_KEY) holds PEM text; give a file name")
		}
		k, err := loadPublicKeyFile(pubFile)
		if err != nil {
			return nil, "", usagef("-public-key: %v", err)
		}
		key = k
		keyName = "WeChat Pay public key"
		if !strings.HasPrefix(serial, "PUB_KEY_ID_") {
			return nil, "", invalid("unknown serial: the response names platform certificate %s, not a public key; verify it with -cert", serial)
		}
		if pubID != "" && pubID != serial {
			return nil, "", invalid("unknown serial: the response names public key %s, but the public key given is %s", serial, pubID)
		}
		keyName += " " + serial
	}

	return key, keyName, nil
}

func invalid(format string, args ...any) error {
	return &exitError{code: exitVerify, msg: "wechatpay verify: invalid: " + fmt.Sprintf(format, args...)}
}
