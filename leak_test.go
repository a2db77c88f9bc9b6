package wechatpay_test

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the run if, after all tests, a goroutine running this
// module's code is still alive: background refreshes, shared downloads and
// sandbox handlers must all end with their owners.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := waitForLeaks(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines outlived the tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

func waitForLeaks(d time.Duration) string {
	deadline := time.Now().Add(d)
	for {
		leaked := moduleGoroutines()
		if leaked == "" || time.Now().After(deadline) {
			return leaked
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func moduleGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var leaked []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "wxpaykit/wechatpay") && !strings.Contains(g, "moduleGoroutines") && !strings.Contains(g, "testing.(*M).Run") {
			leaked = append(leaked, g)
		}
	}
	return strings.Join(leaked, "\n\n")
}
