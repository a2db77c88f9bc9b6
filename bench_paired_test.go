//go:build unix

package wechatpay

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the CPU time (user and system) used by the process so far:
// what a benchmark charges to an operation, so that other processes
// taking the CPU do not change the figure.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRoundTripVsFloor pairs BenchmarkRoundTrip with its floor (one
// RSA-2048 signature and one verification, as BenchmarkSignFloor and
// BenchmarkVerifyFloor): each iteration runs one of each, in alternating
// order, and charges each the process's CPU time meanwhile. It reports
// the CPU per call of both and their ratio, which is what the Transport
// adds to the cryptography; a busy machine changes neither side alone.
func BenchmarkRoundTripVsFloor(b *testing.B) {
	t, req := benchTransport(b)
	signKey, verifyKey := testKey(0), testKey(1)
	d := sha256.Sum256([]byte("POST\n/v3/pay/transactions/jsapi\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n{}\n"))
	sig, _ := rsa.SignPKCS1v15(nil, verifyKey, crypto.SHA256, d[:])
	floor := func() {
		if _, err := rsa.SignPKCS1v15(nil, signKey, crypto.SHA256, d[:]); err != nil {
			b.Fatal(err)
		}
		if err := rsa.VerifyPKCS1v15(&verifyKey.PublicKey, crypto.SHA256, d[:], sig); err != nil {
			b.Fatal(err)
		}
	}
	call := func() { roundTripOnce(b, t, req) }
	call()
	floor()
	var cpuCall, cpuFloor time.Duration
	n := 0
	for b.Loop() {
		run := func(f func(), sum *time.Duration) {
			t0 := cpuTime()
			f()
			*sum += cpuTime() - t0
		}
		if n%2 == 0 {
			run(call, &cpuCall)
			run(floor, &cpuFloor)
		} else {
			run(floor, &cpuFloor)
			run(call, &cpuCall)
		}
		n++
	}
	b.ReportMetric(float64(cpuCall.Nanoseconds())/float64(n), "call-cpu-ns/op")
	b.ReportMetric(float64(cpuFloor.Nanoseconds())/float64(n), "floor-cpu-ns/op")
	b.ReportMetric(float64(cpuCall)/float64(cpuFloor), "call/floor")
}
