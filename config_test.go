package wechatpay

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// fieldsOf returns the Config fields err names, in order.
func fieldsOf(err error) []string {
	var fields []string
	var walk func(error)
	walk = func(err error) {
		if f, ok := err.(interface{ Field() string }); ok {
			fields = append(fields, f.Field())
			return
		}
		if m, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range m.Unwrap() {
				walk(e)
			}
		}
	}
	walk(err)
	return fields
}

func TestConfigFieldErrors(t *testing.T) {
	const secret = "SECRETSECRETSECRETSECRET" // 24 bytes: a wrong APIv3 key
	key := testKey(0)
	ok := Config{MerchantID: "1900000001", CertificateSerial: "ABC", PrivateKey: key, APIv3Key: strings.Repeat("k", 32)}
	tests := []struct {
		name   string
		edit   func(*Config)
		fields []string
	}{
		{"valid", func(*Config) {}, nil},
		{"empty", func(c *Config) { *c = Config{} }, []string{"MerchantID", "CertificateSerial", "PrivateKey", "APIv3Key"}},
		{"short APIv3 key", func(c *Config) { c.APIv3Key = secret }, []string{"APIv3Key"}},
		{"public key ID without key", func(c *Config) { c.PublicKeyID = "PUB_KEY_ID_1" }, []string{"PublicKey"}},
		{"public key without ID", func(c *Config) { c.PublicKey = &key.PublicKey }, []string{"PublicKeyID"}},
		{"public key ID prefix", func(c *Config) { c.PublicKeyID, c.PublicKey = "KEY_1", &key.PublicKey }, []string{"PublicKeyID"}},
		{"public key only", func(c *Config) { c.APIv3Key, c.PublicKeyID, c.PublicKey = "", "PUB_KEY_ID_1", &key.PublicKey }, nil},
		{"base URL", func(c *Config) { c.BaseURL = "ftp://example.com" }, []string{"BaseURL"}},
		// "1900000001/void" would name merchant 1900000001's void record
		// in a shared Cache.
		{"merchant ID with a slash", func(c *Config) { c.MerchantID = "1900000001/void" }, []string{"MerchantID"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.edit(&cfg)
			_, _, err := cfg.check()
			if got := fieldsOf(err); !slices.Equal(got, tc.fields) {
				t.Fatalf("check() fields = %v; want %v (error %v)", got, tc.fields, err)
			}
			if err == nil {
				return
			}
			msg := err.Error()
			if strings.Count(msg, "wechatpay:") != 1 || strings.Contains(msg, secret) {
				t.Errorf("check() = %q; want one prefix and no secret", msg)
			}
			// The same error comes out of NewTransport and Register.
			if _, terr := NewTransport(cfg); !slices.Equal(fieldsOf(terr), tc.fields) {
				t.Errorf("NewTransport fields = %v; want %v", fieldsOf(terr), tc.fields)
			}
			var fe interface{ Field() string }
			if !errors.As(err, &fe) || fe.Field() != tc.fields[0] {
				t.Errorf("errors.As(err, Field) = %v; want field %s", fe, tc.fields[0])
			}
		})
	}
	bad := Config{MerchantID: "1", CertificateSerial: "2", PrivateKey: key, APIv3Key: secret}
	_, _, err := bad.check()
	if !errors.Is(err, ErrAPIv3Key) {
		t.Errorf("short APIv3 key: %v; want ErrAPIv3Key", err)
	}
}
