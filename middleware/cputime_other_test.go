//go:build !linux

package middleware_test

import "time"

var start = time.Now()

// threadCPU falls back to the monotonic clock where the thread CPU clock
// is not read (only Linux here).
func threadCPU() time.Duration { return time.Since(start) }

const cpuClock = "wall time"
