package main

import (
	"crypto/rsa"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// credSpec describes one credential: its flag, its environment variable
// and its key in a sandbox's merchant.json.
type credSpec struct {
	flag, arg, env, json string
	name                 string // short name, for messages
	usage                string // flag usage; the back-quoted word names the argument
}

func credSpecs() []credSpec {
	return []credSpec{
		{"mchid", "ID", "WECHATPAY_MCHID", "mchid", "merchant ID", "merchant `ID` (商户号)"},
		{"serial", "SERIAL", "WECHATPAY_SERIAL", "serial", "merchant certificate serial", "`SERIAL` number of the merchant API certificate (apiclient_cert.pem)"},
		{"key", "FILE", "WECHATPAY_PRIVATE_KEY", "private_key", "merchant private key", "merchant API private key PEM `FILE` (apiclient_key.pem)"},
		{"apiv3-key", "KEY", "WECHATPAY_APIV3_KEY", "apiv3_key", "APIv3 key", "APIv3 `KEY`, 32 characters"},
		{"base-url", "URL", "WECHATPAY_BASE_URL", "base_url", "base URL", "API base `URL` (default " + wechatpay.DefaultBaseURL + ")"},
		{"public-key-id", "ID", "WECHATPAY_PUBLIC_KEY_ID", "public_key_id", "WeChat Pay public key ID", "WeChat Pay public key `ID` (PUB_KEY_ID_...)"},
		{"public-key", "FILE", "WECHATPAY_PUBLIC_KEY", "public_key", "WeChat Pay public key file", "WeChat Pay public key PEM `FILE` (pub_key.pem)"},
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

// credFlags are the credential flags of one command.
type credFlags struct {
	fs         *flagSet
	vals       map[string]*string // by flag name
	sandbox    bool
	sandboxDir string
}

// addCredFlags registers the credential flags on fs. Flag defaults are
// empty on purpose: the environment is read after parsing, so that -h
// never prints a secret found in the environment. Every command accepts
// every credential flag, so that one set of flags serves all; those a
// command with needs n does not use are left out of its -h.
func addCredFlags(fs *flagSet, n need) *credFlags {
	c := &credFlags{fs: fs, vals: make(map[string]*string)}
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

// session is a loaded configuration and, with -sandbox, the server it
// talks to.
type session struct {
	cfg wechatpay.Config
	srv *wechatpaytest.Server // nil unless -sandbox
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

// load resolves the credentials (flags, then -sandbox-dir or the
// environment) and checks all of them at once.
func (c *credFlags) load(a *app, cmd string, n need) (*session, error) {
	if c.sandbox {
		var explicit []string
		c.fs.Visit(func(f *flag.Flag) {
			if _, ok := c.vals[f.Name]; ok || f.Name == "sandbox-dir" {
				explicit = append(explicit, "-"+f.Name)
			}
		})
		if len(explicit) > 0 {
			return nil, usagef("-sandbox brings its own credentials; drop %s", strings.Join(explicit, ", "))
		}
		srv := wechatpaytest.NewServer()
		return &session{cfg: srv.Config(), srv: srv}, nil
	}

	var file *sandboxFile
	if c.sandboxDir != "" {
		f, err := readSandboxFile(c.sandboxDir)
		if err != nil {
			return nil, &credError{cmd, []string{fmt.Sprintf("-sandbox-dir: %v (start one with 'wechatpay sandbox -dir %s')", err, c.sandboxDir)}}
		}
		file = f
	}

	// value returns a credential and where it came from.
	value := func(s credSpec) (v, from string) {
		if v := *c.vals[s.flag]; v != "" {
			return v, "-" + s.flag
		}
		if file != nil {
			return file.get(s.json), c.sandboxDir + "/merchant.json"
		}
		return a.getenv(s.env), "$" + s.env
	}
	spec := make(map[string]credSpec)
	for _, s := range credSpecs() {
		spec[s.flag] = s
	}
	how := func(name string) string {
		s := spec[name]
		return fmt.Sprintf("pass -%s %s or set %s", s.flag, s.arg, s.env)
	}

	var problems []string
	missing := func(name, what string) {
		problems = append(problems, fmt.Sprintf("%s is missing: %s", what, how(name)))
	}
	bad := func(name, from, msg string) {
		problems = append(problems, fmt.Sprintf("%s (from %s) %s: %s", spec[name].name, from, msg, how(name)))
	}

	var cfg wechatpay.Config
	mchid, _ := value(spec["mchid"])
	serial, _ := value(spec["serial"])
	keyPath, keyFrom := value(spec["key"])
	apiv3, apiv3From := value(spec["apiv3-key"])
	baseURL, baseFrom := value(spec["base-url"])
	pubID, pubIDFrom := value(spec["public-key-id"])
	pubPath, pubFrom := value(spec["public-key"])

	if n&needSigner != 0 {
		if mchid == "" {
			missing("mchid", "merchant ID")
		}
		cfg.MerchantID = mchid
		if serial == "" {
			missing("serial", "merchant certificate serial")
		}
		cfg.CertificateSerial = serial
		if keyPath == "" {
			missing("key", "merchant private key")
		} else if looksLikePEM(keyPath) {
			bad("key", keyFrom, "holds PEM text, not a file name (its content is not shown)")
		} else if k, err := wechatpay.LoadPrivateKeyFile(keyPath); err != nil {
			bad("key", keyFrom, "cannot be used: "+strings.TrimPrefix(err.Error(), "wechatpay: "))
		} else {
			cfg.PrivateKey = k
		}
	}

	if n&(needKeys|needAPIv3) == 0 {
		// Signing only (the sign command): the other credentials are not
		// used, so they are not checked either.
		if len(problems) > 0 {
			return nil, &credError{cmd, problems}
		}
		return &session{cfg: cfg}, nil
	}

	if pubID != "" || pubPath != "" {
		switch {
		case pubID == "":
			missing("public-key-id", "WeChat Pay public key ID (needed with the public key file)")
		case !strings.HasPrefix(pubID, "PUB_KEY_ID_"):
			bad("public-key-id", pubIDFrom, "does not start with PUB_KEY_ID_")
		}
		switch {
		case pubPath == "":
			missing("public-key", "WeChat Pay public key file (needed with the public key ID)")
		case looksLikePEM(pubPath):
			bad("public-key", pubFrom, "holds PEM text, not a file name")
		default:
			if k, err := loadPublicKeyFile(pubPath); err != nil {
				bad("public-key", pubFrom, "cannot be used: "+strings.TrimPrefix(err.Error(), "wechatpay: "))
			} else {
				cfg.PublicKey = k
			}
		}
		cfg.PublicKeyID = pubID
	}

	if apiv3 != "" {
		// Only the length is ever reported, never the key.
		if len(apiv3) != 32 {
			bad("apiv3-key", apiv3From, fmt.Sprintf("is %d bytes long; an APIv3 key is exactly 32", len(apiv3)))
		} else {
			cfg.APIv3Key = apiv3
		}
	} else if n&needAPIv3 != 0 {
		missing("apiv3-key", "APIv3 key (it decrypts the platform certificates)")
	} else if n&needKeys != 0 && pubID == "" && pubPath == "" {
		problems = append(problems, "APIv3 key is missing, and so is a WeChat Pay public key; one of them is needed to verify responses: "+
			how("apiv3-key")+", or pass -public-key-id and -public-key (or set WECHATPAY_PUBLIC_KEY_ID and WECHATPAY_PUBLIC_KEY)")
	}

	if baseURL == "" {
		baseURL = wechatpay.DefaultBaseURL
	}
	if u, err := url.Parse(baseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		bad("base-url", baseFrom, fmt.Sprintf("%q is not an http(s) URL", baseURL))
	}
	cfg.BaseURL = strings.TrimSuffix(baseURL, "/")

	if len(problems) > 0 {
		return nil, &credError{cmd, problems}
	}
	return &session{cfg: cfg}, nil
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
