package wechatpay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

// checkRing checks the Store's third invariant: the ring lists exactly the
// registrations holding a set, at their index, and no more than Size.
func checkRing(t *testing.T, s *Store) {
	t.Helper()
	s.ringMu.Lock()
	defer s.ringMu.Unlock()
	if len(s.ring) > s.opts.Size {
		t.Errorf("%d sets held; Size is %d", len(s.ring), s.opts.Size)
	}
	for i, m := range s.ring {
		if m.ring != i || m.set.Load() == nil || m.superseded.Load() {
			t.Errorf("ring[%d] = merchant %s at index %d, set %v, superseded %v", i, m.id, m.ring, m.set.Load() != nil, m.superseded.Load())
		}
	}
	s.merchants.Range(func(_, v any) bool {
		if m := v.(*merchant); (m.set.Load() != nil) != (m.ring >= 0) {
			t.Errorf("merchant %s: set held %v, ring index %d", m.id, m.set.Load() != nil, m.ring)
		}
		return true
	})
}

// TestStoreBoundAndSecondChance: with Size 4 and 20 merchants, no more
// than 4 sets are ever held, and a merchant hit between every two others
// is never evicted (the CLOCK hand passes it over), so it downloads once.
func TestStoreBoundAndSecondChance(t *testing.T) {
	f := newFake(t)
	var ids []string
	for i := range 20 {
		ids = append(ids, fmt.Sprintf("19000000%02d", i))
	}
	s := newTestStore(t, StoreOptions{Size: 4}, f, ids...)
	defer s.Close()
	clock := newTestClock(s, f)
	serial := wire.CertSerial(f.certs[0].cert)
	ctx := context.Background()
	hot := ids[0]
	for round := range 3 {
		for _, id := range ids[1:] {
			for _, m := range []string{hot, id} {
				if _, err := s.PublicKey(ctx, m, serial); err != nil {
					t.Fatalf("round %d: merchant %s: %v", round, m, err)
				}
				checkRing(t, s)
			}
		}
		clock.advance(DefaultMinRefreshInterval) // each cold merchant may download again
	}
	if st := s.Status(hot)[0]; st.Downloads != 1 || st.Evictions != 0 {
		t.Errorf("hot merchant: %d downloads, %d evictions; want 1 and 0", st.Downloads, st.Evictions)
	}
	if st := s.Status(ids[5])[0]; st.Evictions == 0 {
		t.Errorf("a cold merchant was never evicted")
	}
	if n := s.Len(); n > 4 {
		t.Errorf("Len = %d with Size 4 and one certificate each", n)
	}
}

// TestStoreHitsRaceRefreshesAndEvictions runs hits on a few merchants
// while others force evictions, the hot ones are refreshed and
// re-registered, and checks under -race that every answer is the right
// key or a refusal, never another key, and that the ring stays sound.
func TestStoreHitsRaceRefreshesAndEvictions(t *testing.T) {
	f := newFake(t)
	var ids []string
	for i := range 12 {
		ids = append(ids, fmt.Sprintf("19000001%02d", i))
	}
	s := newTestStore(t, StoreOptions{Size: 3}, f, ids...)
	defer s.Close()
	serial := wire.CertSerial(f.certs[0].cert)
	want := f.certs[0].key.Public()
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 4 {
		wg.Go(func() {
			for i := range 300 {
				id := ids[(g+i)%len(ids)]
				if i%3 != 0 {
					id = ids[g%2] // mostly the hot two
				}
				k, err := s.PublicKey(ctx, id, serial)
				switch {
				case err == nil && !k.Equal(want):
					errs <- fmt.Errorf("merchant %s: wrong key", id)
				case err != nil && !errors.Is(err, ErrUnknownSerial) && !errors.Is(err, errSuperseded):
					// A lookup whose download a re-registration superseded
					// gets errSuperseded; anything else is a fault.
					errs <- fmt.Errorf("merchant %s: %v", id, err)
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 30 {
			id := ids[i%2]
			// A Refresh that joins a lookup's download shares its answer,
			// a refusal by the rate limit included.
			if err := s.Refresh(ctx, id); err != nil && !errors.As(err, new(errRecentlyRefreshed)) {
				errs <- fmt.Errorf("Refresh %s: %v", id, err)
			}
			if err := s.Register(testConfig(id, f)); err != nil {
				errs <- err
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	checkRing(t, s)
}
