package payments

import "strconv"

// FormatAmount formats an amount in fen (the smallest unit, 1/100 of the
// currency's main unit, as WeChat Pay sends every amount) for people:
// FormatAmount(100, "CNY") is "1.00 CNY", FormatAmount(-5, "CNY") is
// "-0.05 CNY". It uses integer arithmetic only, so every int64 formats
// exactly. An empty currency leaves the suffix out.
func FormatAmount(fen int64, currency string) string {
	neg := fen < 0
	// Work on the unsigned magnitude: -math.MinInt64 overflows int64.
	u := uint64(fen)
	if neg {
		u = -u
	}
	cents := u % 100
	b := make([]byte, 0, 32)
	if neg {
		b = append(b, '-')
	}
	b = strconv.AppendUint(b, u/100, 10)
	b = append(b, '.', byte('0'+cents/10), byte('0'+cents%10))
	if currency != "" {
		b = append(b, ' ')
		b = append(b, currency...)
	}
	return string(b)
}
