package wechatpay

import (
	"context"
	"crypto"
	"crypto/rsa"
	"errors"
	"fmt"
	"slices"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

// EncryptionKey returns the key that encrypts sensitive request fields of
// merchantID, and the serial a request carrying such fields must send as
// Wechatpay-Serial (docs/protocol.md §7): the configured WeChat Pay public key and
// its PUB_KEY_ID_ when the merchant has one (a request cannot mix a public
// key and platform certificates, docs/protocol.md §3.2), otherwise the valid
// platform certificate with the latest expiry, downloaded if none is
// cached. Use one key for all the fields of a request.
func (s *Store) EncryptionKey(ctx context.Context, merchantID string) (serial string, key *rsa.PublicKey, err error) {
	m, err := s.merchant(merchantID)
	if err != nil {
		return "", nil, err
	}
	if len(m.publicKeys) > 0 {
		// Registration allows one public key; pick deterministically anyway.
		ids := make([]string, 0, len(m.publicKeys))
		for id := range m.publicKeys {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		return ids[0], m.publicKeys[ids[0]], nil
	}
	k, err := s.newest(ctx, merchantID)
	if err != nil {
		return "", nil, fmt.Errorf("wechatpay: no key to encrypt with: %w", err)
	}
	return k.serial, k.pub, nil
}

// EncryptFields encrypts the strings fields point to in place, all with
// the same key (see Encrypt), and returns the serial to send as
// Wechatpay-Serial. Empty strings stay empty. If any field cannot be
// encrypted, none is changed and the error says which one (by position).
func EncryptFields(ctx context.Context, store *Store, merchantID string, fields ...*string) (serial string, err error) {
	if store == nil {
		return "", errors.New("wechatpay: encrypt: nil Store")
	}
	serial, key, err := store.EncryptionKey(ctx, merchantID)
	if err != nil {
		return "", err
	}
	out := make([]string, len(fields))
	for i, f := range fields {
		if f == nil {
			return "", fmt.Errorf("wechatpay: encrypt: field %d is a nil pointer", i)
		}
		if *f == "" {
			continue
		}
		if out[i], err = wire.EncryptOAEP(key, []byte(*f)); err != nil {
			return "", fmt.Errorf("%w (field %d, key %s)", err, i, serial)
		}
	}
	for i, f := range fields {
		if *f != "" {
			*f = out[i]
		}
	}
	return serial, nil
}

// Decrypt decrypts a sensitive field of a WeChat Pay response, which
// WeChat Pay encrypts with the merchant API certificate (RSA-OAEP, SHA-1),
// using the private key merchantID is registered with. The key must
// implement crypto.Decrypter (*rsa.PrivateKey does; KMS keys may not, in
// which case call DecryptOAEP with a decrypter of your own). The error
// never contains the plaintext.
func Decrypt(store *Store, merchantID, ciphertext string) (string, error) {
	if store == nil {
		return "", errors.New("wechatpay: decrypt: nil Store")
	}
	m, err := store.merchant(merchantID)
	if err != nil {
		return "", err
	}
	if m.signer == nil || m.signer.Key == nil {
		return "", fmt.Errorf("wechatpay: decrypt: merchant %s has no private key in the store", m.id)
	}
	d, ok := m.signer.Key.(crypto.Decrypter)
	if !ok {
		return "", fmt.Errorf("wechatpay: decrypt: the private key of merchant %s (%T) cannot decrypt; use DecryptOAEP", m.id, m.signer.Key)
	}
	pt, err := DecryptOAEP(d, ciphertext)
	if err != nil {
		return "", err
	}
	return string(pt), nil
}
