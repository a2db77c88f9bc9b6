package middleware

import (
	"context"
	"testing"
	"time"
)

func TestMemoryGuard(t *testing.T) {
	now := time.Unix(1700000000, 0)
	g := NewMemoryGuard(8)
	g.now = func() time.Time { return now }
	ctx := context.Background()
	claim := func(key, token string, want ClaimState) {
		t.Helper()
		if got, err := g.Claim(ctx, key, token); got != want || err != nil {
			t.Fatalf("Claim(%q, %q) = %v, %v; want %v", key, token, got, err, want)
		}
	}

	claim("m1:EV-1", "a", Claimed)
	claim("m1:EV-1", "b", InProgress)
	claim("m2:EV-1", "c", Claimed) // scoped by merchant

	// Release only by the token that holds the claim.
	g.Release(ctx, "m1:EV-1", "b")
	claim("m1:EV-1", "b", InProgress)
	g.Release(ctx, "m1:EV-1", "a")
	claim("m1:EV-1", "b", Claimed)

	// Done wins over any claim and is not released.
	g.Done(ctx, "m1:EV-1")
	doneAt := now
	g.Release(ctx, "m1:EV-1", "b")
	claim("m1:EV-1", "d", Processed)

	// A claim whose holder died expires.
	claim("m1:EV-crash", "e", Claimed)
	now = now.Add(DefaultClaimTTL - time.Second)
	claim("m1:EV-crash", "f", InProgress)
	now = now.Add(2 * time.Second)
	claim("m1:EV-crash", "f", Claimed)

	// Done is remembered for MinDoneTTL, then forgotten.
	now = doneAt.Add(MinDoneTTL - time.Second)
	claim("m1:EV-1", "g", Processed)
	now = doneAt.Add(MinDoneTTL + time.Second)
	claim("m1:EV-1", "g", Claimed)
}

func TestClaimStateString(t *testing.T) {
	for s, want := range map[ClaimState]string{Claimed: "claimed", InProgress: "in progress", Processed: "processed", 7: "ClaimState(7)"} {
		if got := s.String(); got != want {
			t.Errorf("%d.String() = %q; want %q", int(s), got, want)
		}
	}
}

// TestGuardKey: the first colon of a key always ends the merchant ID, so
// two merchants never share a key, and a merchant ID of digits is kept.
func TestGuardKey(t *testing.T) {
	for _, tc := range []struct{ merchant, id, want string }{
		{"1900000001", "EV-1", "1900000001:EV-1"},
		{"a:b", "c", "a%3Ab:c"},
		{"a", "b:c", "a:b:c"},
		{"a%3Ab", "c", "a%253Ab:c"},
	} {
		if got := GuardKey(tc.merchant, tc.id); got != tc.want {
			t.Errorf("GuardKey(%q, %q) = %q; want %q", tc.merchant, tc.id, got, tc.want)
		}
	}
}
