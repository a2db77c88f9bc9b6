package main

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// credSpec describes one credential: its flag, its environment variable,
// its key in a sandbox's merchant.json and the wechatpay.Config field it
// fills.
type credSpec struct {
	flag, arg, env, json string
	field                string // the wechatpay.Config field
	name                 string // short name, for messages
	usage                string // flag usage; the back-quoted word names the argument
}

func credSpecs() []credSpec {
	return []credSpec{
		{"mchid", "ID", "WECHATPAY_MCHID", "mchid", "MerchantID", "merchant ID", "merchant `ID` (商户号)"},
		{"serial", "SERIAL", "WECHATPAY_SERIAL", "serial", "CertificateSerial", "merchant certificate serial", "`SERIAL` number of the merchant API certificate (apiclient_cert.pem)"},
		{"key", "FILE", "WECHATPAY_PRIVATE_KEY", "private_key", "PrivateKey", "merchant private key", "merchant API private key PEM `FILE` (apiclient_key.pem)"},
		{"apiv3-key", "KEY", "WECHATPAY_APIV3_KEY", "apiv3_key", "APIv3Key", "APIv3 key", "APIv3 `KEY`, 32 characters"},
		{"base-url", "URL", "WECHATPAY_BASE_URL", "base_url", "BaseURL", "base URL", "API base `URL` (default " + wechatpay.DefaultBaseURL + ")"},
		{"public-key-id", "ID", "WECHATPAY_PUBLIC_KEY_ID", "public_key_id", "PublicKeyID", "WeChat Pay public key ID", "WeChat Pay public key `ID` (PUB_KEY_ID_...)"},
		{"public-key", "FILE", "WECHATPAY_PUBLIC_KEY", "public_key", "PublicKey", "WeChat Pay public key file", "WeChat Pay public key PEM `FILE` (pub_key.pem)"},
	}
}

// usedWith reports whether a command that needs n uses the credential.
func (s credSpec) usedWith(n need) bool {
	switch s.flag {
	case "mchid", "serial", "key":
		return n&needSigner != 0
	case "apiv3-key", "base-url":
		return n&(needKeys|needAPIv3) != 0
	case "public-key-id", "public-key":
		return n&needKeys != 0
	}
	return true
}

// how says how to give the credential.
func (s credSpec) how() string {
	return fmt.Sprintf("pass -%s %s or set %s", s.flag, s.arg, s.env)
}

// credFlags are the credential flags of one command.
type credFlags struct {
	fs         *flagSet
	need       need
	vals       map[string]*string // by flag name
	sandbox    bool
	sandboxDir string

	// store, if set before load, is the Store the session's Transport
	// registers with (certs sets its own fetch timeout).
	store *wechatpay.Store
}

// addCredFlags registers the credential flags on fs for a command that
// needs n. Flag defaults are empty on purpose: the environment is read
// after parsing, so that -h never prints a secret found in the
// environment. Every command accepts every credential flag, so that one
// set of flags serves all; those a command does not use are left out of
// its -h.
func addCredFlags(fs *flagSet, n need) *credFlags {
	c := &credFlags{fs: fs, need: n, vals: make(map[string]*string)}
	for _, s := range credSpecs() {
		c.vals[s.flag] = fs.String(s.flag, "", s.usage+"; or $"+s.env)
		if !s.usedWith(n) {
			if fs.hidden == nil {
				fs.hidden = make(map[string]bool)
			}
			fs.hidden[s.flag] = true
		}
	}
	fs.BoolVar(&c.sandbox, "sandbox", false, "run against an in-process sandbox with generated credentials")
	fs.StringVar(&c.sandboxDir, "sandbox-dir", "", "read credentials from `DIR`/merchant.json, written by 'wechatpay sandbox'")
	return c
}

// Which credentials a command needs.
type need int

const (
	needSigner need = 1 << iota // merchant ID, serial, private key
	needKeys                    // APIv3 key or a public key, to verify responses
	needAPIv3                   // the APIv3 key itself (certificate download)
)

// session is the one path from credentials to a client: the loaded
// configuration, the client built from it and, with -sandbox, the server
// it talks to.
type session struct {
	cfg wechatpay.Config
	// client signs every request and verifies every answer; nil for a
	// command that only signs (sign, payparams).
	client *http.Client
	srv    *wechatpaytest.Server // nil unless -sandbox
	// sandbox is set with -sandbox and -sandbox-dir: the merchant is the
	// sandbox's, so that examples may leave out its mchid.
	sandbox bool
}

func (s *session) close() {
	if s.srv != nil {
		s.srv.Close()
	}
}

// credError lists every credential that is missing or bad.
type credError struct {
	cmd      string
	problems []string
}

func (e *credError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "wechatpay %s: missing or bad credentials:\n", e.cmd)
	for _, p := range e.problems {
		fmt.Fprintf(&b, "  - %s\n", p)
	}
	fmt.Fprintf(&b, "Flags override environment variables. To try without an account, add -sandbox.")
	return b.String()
}

// sandboxFile is merchant.json, written by the sandbox command.
type sandboxFile struct {
	MchID       string `json:"mchid"`
	Serial      string `json:"serial"`
	PrivateKey  string `json:"private_key"`
	APIv3Key    string `json:"apiv3_key"`
	BaseURL     string `json:"base_url"`
	PublicKeyID string `json:"public_key_id"`
	PublicKey   string `json:"public_key"`
}

func (f *sandboxFile) get(key string) string {
	switch key {
	case "mchid":
		return f.MchID
	case "serial":
		return f.Serial
	case "private_key":
		return f.PrivateKey
	case "apiv3_key":
		return f.APIv3Key
	case "base_url":
		return f.BaseURL
	case "public_key_id":
		return f.PublicKeyID
	case "public_key":
		return f.PublicKey
	}
	return ""
}

func readSandboxFile(dir string) (*sandboxFile, error) {
	data, err := os.ReadFile(filepath.Join(dir, "merchant.json"))
	if err != nil {
		return nil, err
	}
	var f sandboxFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "merchant.json"), err)
	}
	// Key files are named relative to the directory.
	for _, p := range []*string{&f.PrivateKey, &f.PublicKey} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	return &f, nil
}

// credValue is one credential as given, and where it came from.
type credValue struct {
	spec      credSpec
	v, from   string
	fileError string // a key file that could not be used
}

// load resolves the credentials (flags, then -sandbox-dir or the
// environment), builds the client through wechatpay.NewTransport, and
// reports every problem at once: those the library finds in the
// configuration, mapped back to the flags that gave the values, and
// those of key files.
func (c *credFlags) load(a *app, cmd string) (*session, error) {
	if c.sandbox {
		if err := c.sandboxAlone(); err != nil {
			return nil, err
		}
		srv := wechatpaytest.NewServer()
		s, err := c.connect(cmd, srv.Config(), nil)
		if err != nil {
			srv.Close()
			return nil, err
		}
		s.srv, s.sandbox = srv, true
		return s, nil
	}
	vals, err := c.values(a, cmd)
	if err != nil {
		return nil, err
	}
	// Only the credentials the command uses: the others are accepted and
	// ignored.
	for _, v := range vals {
		if !c.uses(v.spec) {
			v.v = ""
		}
	}
	var cfg wechatpay.Config
	cfg.MerchantID = vals["mchid"].v
	cfg.CertificateSerial = vals["serial"].v
	cfg.APIv3Key = vals["apiv3-key"].v
	cfg.BaseURL = strings.TrimSuffix(vals["base-url"].v, "/")
	cfg.PublicKeyID = vals["public-key-id"].v
	if p := vals["key"]; p.v != "" {
		if k, msg := loadKeyFile(p.v, wechatpay.LoadPrivateKeyFile); msg != "" {
			p.fileError = msg
		} else {
			cfg.PrivateKey = k
		}
	}
	if p := vals["public-key"]; p.v != "" {
		if k, msg := loadKeyFile(p.v, loadPublicKeyFile); msg != "" {
			p.fileError = msg
		} else {
			cfg.PublicKey = k
		}
	}
	s, err := c.connect(cmd, cfg, vals)
	if err != nil {
		return nil, err
	}
	s.sandbox = c.sandboxDir != ""
	return s, nil
}

// sandboxAlone refuses credential flags beside -sandbox, which brings
// its own.
func (c *credFlags) sandboxAlone() error {
	var explicit []string
	c.fs.Visit(func(f *flag.Flag) {
		if _, ok := c.vals[f.Name]; ok || f.Name == "sandbox-dir" {
			explicit = append(explicit, "-"+f.Name)
		}
	})
	if len(explicit) > 0 {
		return usagef("-sandbox brings its own credentials; drop %s", strings.Join(explicit, ", "))
	}
	return nil
}

// values returns each credential by flag name: from its flag, else from
// -sandbox-dir's merchant.json, else from the environment.
func (c *credFlags) values(a *app, cmd string) (map[string]*credValue, error) {
	var file *sandboxFile
	if c.sandboxDir != "" {
		f, err := readSandboxFile(c.sandboxDir)
		if err != nil {
			return nil, &credError{cmd, []string{fmt.Sprintf("-sandbox-dir: %v (start one with 'wechatpay sandbox -dir %s')", err, c.sandboxDir)}}
		}
		file = f
	}
	vals := make(map[string]*credValue)
	for _, s := range credSpecs() {
		v := &credValue{spec: s}
		switch {
		case *c.vals[s.flag] != "":
			v.v, v.from = *c.vals[s.flag], "-"+s.flag
		case file != nil:
			v.v, v.from = file.get(s.json), c.sandboxDir+"/merchant.json"
		default:
			v.v, v.from = a.getenv(s.env), "$"+s.env
		}
		vals[s.flag] = v
	}
	return vals, nil
}

func (c *credFlags) uses(s credSpec) bool { return s.usedWith(c.need) }

// connect builds the client for cfg. vals, nil with -sandbox, says where
// each value came from, for messages.
func (c *credFlags) connect(cmd string, cfg wechatpay.Config, vals map[string]*credValue) (*session, error) {
	cfg.Store = c.store
	var problems []string
	reported := make(map[string]bool) // by Config field
	for _, s := range credSpecs() {
		if v := vals[s.flag]; v != nil && v.fileError != "" {
			problems = append(problems, fmt.Sprintf("%s (from %s) %s: %s", s.name, v.from, v.fileError, s.how()))
			reported[s.field] = true
		}
	}
	if c.need&needAPIv3 != 0 && cfg.APIv3Key == "" {
		s := specByField("APIv3Key")
		problems = append(problems, fmt.Sprintf("%s is missing (it decrypts the platform certificates): %s", s.name, s.how()))
		reported[s.field] = true
	}
	t, err := wechatpay.NewTransport(cfg)
	for _, fe := range fieldErrors(err) {
		s := specByField(fe.Field())
		if reported[s.field] || !c.uses(s) {
			continue
		}
		reported[s.field] = true
		problems = append(problems, describeField(s, fe.Problem(), vals[s.flag]))
	}
	if len(problems) > 0 {
		return nil, &credError{cmd, problems}
	}
	if err != nil && len(fieldErrors(err)) == 0 {
		return nil, err
	}
	s := &session{cfg: cfg}
	if t != nil {
		s.client = &http.Client{Transport: t}
	}
	if s.cfg.BaseURL == "" {
		s.cfg.BaseURL = wechatpay.DefaultBaseURL
	}
	return s, nil
}

// fieldError is how the library names a wrong wechatpay.Config field.
type fieldError interface {
	error
	Field() string
	Problem() string
}

// fieldErrors returns every field error in err's tree.
func fieldErrors(err error) []fieldError {
	var out []fieldError
	var walk func(error)
	walk = func(err error) {
		if fe, ok := err.(fieldError); ok {
			out = append(out, fe)
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	if err != nil {
		walk(err)
	}
	return out
}

func specByField(field string) credSpec {
	for _, s := range credSpecs() {
		if s.field == field {
			return s
		}
	}
	return credSpec{flag: field, field: field, name: field}
}

// flagWords turns the Config field names in the library's messages into
// this command's flags.
var flagWords = func() *strings.Replacer {
	var r []string
	for _, s := range credSpecs() {
		r = append(r, s.field, "-"+s.flag)
	}
	return strings.NewReplacer(r...)
}()

// describeField says what is wrong with one credential, where it came
// from and how to give it.
func describeField(s credSpec, problem string, v *credValue) string {
	problem = flagWords.Replace(problem)
	for _, absent := range []string{"is empty", "is nil"} {
		if rest, ok := strings.CutPrefix(problem, absent); ok {
			return fmt.Sprintf("%s is missing%s: %s", s.name, rest, s.how())
		}
	}
	from := ""
	if v != nil && v.v != "" {
		from = " (from " + v.from + ")"
	}
	return fmt.Sprintf("%s%s %s: %s", s.name, from, problem, s.how())
}

// loadKeyFile loads a key file with load and returns the key, or what is
// wrong with the file. A value holding the key itself is never echoed.
func loadKeyFile[K any](path string, load func(string) (K, error)) (K, string) {
	var zero K
	if looksLikePEM(path) {
		return zero, "holds PEM text, not a file name (its content is not shown)"
	}
	k, err := load(path)
	if err != nil {
		return zero, "cannot be used: " + strings.TrimPrefix(err.Error(), "wechatpay: ")
	}
	return k, ""
}

// looksLikePEM reports whether a value meant to be a file name holds the
// key itself, a common mistake with environment variables. Such a value
// must never be echoed.
func looksLikePEM(s string) bool {
	return strings.Contains(s, "-----BEGIN") || strings.ContainsAny(s, "\n\r")
}

// loadPublicKeyFile reads and parses a WeChat Pay public key PEM file.
func loadPublicKeyFile(path string) (*rsa.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	k, err := wechatpay.LoadPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	return k, nil
}

// send makes a signed request to target with body (nil: none) and the
// extra headers, and returns the answer, verified by the Transport. A
// JSON body goes with Content-Type: application/json unless a header
// says otherwise. A state-changing call whose outcome is unknown comes
// back as a *wechatpay.OutcomeUnknownError.
func (s *session) send(ctx context.Context, method, target string, body []byte, headers [][2]string) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, usagef("%v", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range headers {
		req.Header.Del(h[0]) // a -H replaces a default
	}
	for _, h := range headers {
		req.Header.Add(h[0], h[1])
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, wechatpay.ClassifyError(req, err)
	}
	return resp, nil
}

// call is send for a JSON answer: it returns the verified body of a 2xx
// answer, and the *wechatpay.APIError of any other.
func (s *session) call(ctx context.Context, method, target string, body []byte) ([]byte, error) {
	resp, err := s.send(ctx, method, target, body, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if err := wechatpay.CheckResponse(resp); err != nil {
		return nil, err
	}
	return io.ReadAll(resp.Body)
}
