package wechatpay

import (
	"slices"
	"strings"
	"time"
)

// KeyInfo describes one verification key a Store holds. It holds nothing
// secret.
type KeyInfo struct {
	Serial    string    // platform certificate serial, or the PUB_KEY_ID_ of a public key
	PublicKey bool      // a configured WeChat Pay public key, not a platform certificate
	NotBefore time.Time // zero for public keys
	NotAfter  time.Time // the earlier of the certificate's and its listed expire_time; zero for public keys
	Source    string    // "download", "cache" (StoreOptions.Cache), "added" (AddCertificates) or "config"
}

// MerchantStatus is what a Store knows of one merchant, for operators:
// see Store.Status. It holds nothing secret.
type MerchantStatus struct {
	MerchantID    string
	Keys          []KeyInfo // cached certificates, latest expiry first, then public keys
	PublicKeyOnly bool      // the certificate endpoint answered RESOURCE_NOT_EXISTS
	LastAttempt   time.Time // start of the last certificate download; zero if none
	LastSuccess   time.Time // start of the last successful one
	LastError     error     // of the last download; nil after a success
	NextRefresh   time.Time // when a lookup will start a background refresh; zero if none is due
	Refreshing    bool      // a background refresh is running
	Downloads     int64     // certificate downloads started
	RateLimited   int64     // lookups refused a download by MinRefreshInterval
	CacheRefused  int64     // entries of StoreOptions.Cache refused by the checks
	// Evictions counts the merchant's certificate sets the LRU evicted
	// to make room for others. Evictions of sets obtained less than
	// RefreshInterval before (also an event of Kind EventStoreTooSmall)
	// mean StoreOptions.Size is smaller than the merchants in use: each
	// costs a download.
	Evictions int64
}

// Status reports on the given merchants, or on every registered merchant
// when none is given, sorted by merchant ID; unknown IDs are left out. It
// never downloads and is safe to call at any time.
func (s *Store) Status(merchantIDs ...string) []MerchantStatus {
	var ms []*merchant
	if len(merchantIDs) == 0 {
		s.merchants.Range(func(_, v any) bool {
			ms = append(ms, v.(*merchant))
			return true
		})
	} else {
		for _, id := range merchantIDs {
			if m, err := s.merchant(id); err == nil {
				ms = append(ms, m)
			}
		}
	}
	slices.SortFunc(ms, func(a, b *merchant) int { return strings.Compare(a.id, b.id) })
	ms = slices.CompactFunc(ms, func(a, b *merchant) bool { return a.id == b.id })
	out := make([]MerchantStatus, 0, len(ms))
	now, mono := s.clock()
	for _, m := range ms {
		out = append(out, s.status(m, now, mono))
	}
	return out
}

func (s *Store) status(m *merchant, now time.Time, mono time.Duration) MerchantStatus {
	h := m.hist
	st := MerchantStatus{
		MerchantID:   m.id,
		Refreshing:   h.refreshing.Load(),
		Downloads:    h.downloads.Load(),
		RateLimited:  h.rateLimited.Load(),
		CacheRefused: h.cacheRefused.Load(),
		Evictions:    h.evictions.Load(),
	}
	h.mu.Lock()
	st.PublicKeyOnly, st.LastError = h.publicKeyOnly, h.lastErr
	st.LastAttempt, st.LastSuccess = h.attemptWall, h.successWall
	h.mu.Unlock()
	if cs := m.set.Load(); cs != nil {
		for _, k := range cs.keys {
			st.Keys = append(st.Keys, KeyInfo{Serial: k.serial, NotBefore: k.notBefore, NotAfter: k.notAfter, Source: cs.source})
		}
		if cs.refreshAt != neverDue && time.Duration(h.lastSuccess.Load()) != never {
			st.NextRefresh = now.Add(cs.refreshAt - mono)
		}
	}
	ids := make([]string, 0, len(m.publicKeys))
	for id := range m.publicKeys {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		st.Keys = append(st.Keys, KeyInfo{Serial: id, PublicKey: true, Source: "config"})
	}
	return st
}
