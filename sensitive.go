package wechatpay

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

// encryptFields carries out the sensitive-field step of a request whose
// context holds one (docs/protocol.md §7): it chooses one key for the
// request (the merchant's WeChat Pay public key, or its newest valid
// platform certificate), has the call path build the body and query
// string with every marked field encrypted by that key, and returns the
// body and the key's serial, which the request must send as
// Wechatpay-Serial. r2 is the Transport's own clone: its query string is
// replaced when the call path built one.
func (t *Transport) encryptFields(r2 *http.Request, f *wire.Fields) ([]byte, string, error) {
	store, ok := t.Verifier.Keys.(*Store)
	if !ok {
		return nil, "", errors.New("wechatpay: sensitive fields: the Transport's Verifier has no *Store to choose an encryption key from")
	}
	serial, key, err := store.EncryptionKey(r2.Context(), t.Verifier.MerchantID)
	if err != nil {
		return nil, "", fmt.Errorf("wechatpay: sensitive fields of %s %s: %w", r2.Method, r2.URL.Path, unprefixed(err))
	}
	body, rawQuery, err := f.Build(func(plaintext string) (string, error) {
		return wire.EncryptOAEP(key, []byte(plaintext))
	})
	if err != nil {
		return nil, "", fmt.Errorf("wechatpay: sensitive fields of %s %s (key %s): %w", r2.Method, r2.URL.Path, serial, unprefixed(err))
	}
	if rawQuery != "" {
		r2.URL.RawQuery = rawQuery
	}
	return body, serial, nil
}

// unprefixed is err as the cause inside another error of this package:
// its text without the prefix (see inner), its chain intact.
func unprefixed(err error) error { return prefixless{err, inner(err)} }

type prefixless struct {
	err error
	msg string
}

func (e prefixless) Error() string { return e.msg }
func (e prefixless) Unwrap() error { return e.err }
