package wechatpay

import (
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

// AddCertificates adds platform certificates of merchantID obtained
// elsewhere, such as from apiv2.FetchCertificates, to the store, where they
// verify responses and callbacks like downloaded ones. Each must hold an
// RSA key of at least 2048 bits, be valid now, and chain to
// StoreOptions.Roots if set, or nothing is added. A merchant the store
// does not know is added with these certificates only: the store can then
// verify for it but never downloads (call Register to change that). The
// next download of a registered merchant replaces what AddCertificates
// added, as WeChat Pay's list is authoritative.
func (s *Store) AddCertificates(merchantID string, certs []*x509.Certificate) error {
	if merchantID == "" {
		return errors.New("wechatpay: AddCertificates: empty merchant ID")
	}
	if len(certs) == 0 {
		return errors.New("wechatpay: AddCertificates: no certificates")
	}
	now := s.wall()
	for _, c := range certs {
		serial := wire.CertSerial(c)
		pub, ok := c.PublicKey.(*rsa.PublicKey)
		switch {
		case !ok:
			return fmt.Errorf("wechatpay: AddCertificates: certificate %s has a %T key, want RSA", serial, c.PublicKey)
		case pub.N.BitLen() < 2048:
			return fmt.Errorf("wechatpay: AddCertificates: certificate %s has a %d-bit key, want at least 2048", serial, pub.N.BitLen())
		case now.Before(c.NotBefore) || !now.Before(c.NotAfter):
			return fmt.Errorf("wechatpay: AddCertificates: certificate %s is not valid now (%s to %s)", serial, c.NotBefore.Format(time.RFC3339), c.NotAfter.Format(time.RFC3339))
		}
		if s.opts.Roots != nil {
			if _, err := c.Verify(x509.VerifyOptions{Roots: s.opts.Roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
				return fmt.Errorf("wechatpay: AddCertificates: certificate %s does not chain to the configured roots: %w", serial, err)
			}
		}
	}
	m, err := s.merchant(merchantID)
	if err != nil {
		s.replace(merchantID, newMerchant(trust{id: merchantID}, s.gen.Add(1)))
		if m, err = s.merchant(merchantID); err != nil {
			return err // unregistered meanwhile
		}
	}
	var keys []*storedKey
	refreshAt := time.Duration(0) // a registered merchant refreshes what it did not download
	if cur, cs := s.current(merchantID); cur == m && cs != nil {
		keys = append(keys, cs.keys...)
		refreshAt = cs.refreshAt
	}
	if m.aead == nil {
		refreshAt = neverDue
	}
	for _, c := range certs {
		k := newStoredKey(c, c.PublicKey.(*rsa.PublicKey), c.NotAfter)
		// A certificate added replaces a held one with its serial.
		keys = slices.DeleteFunc(keys, func(o *storedKey) bool { return o.serial == k.serial })
		keys = append(keys, k)
	}
	_, mono := s.clock()
	if !s.hold(m, newCertSet(keys, "added", now, mono, refreshAt)) {
		return errSuperseded
	}
	return nil
}
