package payments

import (
	"math"
	"testing"
)

func TestFormatAmount(t *testing.T) {
	tests := []struct {
		fen      int64
		currency string
		want     string
	}{
		{0, "CNY", "0.00 CNY"},
		{1, "CNY", "0.01 CNY"},
		{10, "CNY", "0.10 CNY"},
		{100, "CNY", "1.00 CNY"},
		{12345, "CNY", "123.45 CNY"},
		{-1, "CNY", "-0.01 CNY"},
		{-100, "CNY", "-1.00 CNY"},
		{-12345, "USD", "-123.45 USD"},
		{100, "", "1.00"},
		{math.MaxInt64, "CNY", "92233720368547758.07 CNY"},
		{math.MinInt64, "CNY", "-92233720368547758.08 CNY"},
		{9007199254740993, "CNY", "90071992547409.93 CNY"}, // 2^53+1: a float64 would round it
	}
	for _, tc := range tests {
		if got := FormatAmount(tc.fen, tc.currency); got != tc.want {
			t.Errorf("FormatAmount(%d, %q) = %q; want %q", tc.fen, tc.currency, got, tc.want)
		}
	}
}
