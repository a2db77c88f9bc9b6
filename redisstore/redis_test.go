package redisstore_test

// The tests of this package run against a real redis-server each test
// starts on a free loopback port; there is no mock of Redis. A machine
// without redis-server fails them (install Debian's redis-server package;
// .ci/run does).

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer is a redis-server process owned by a test.
type redisServer struct {
	t    testing.TB
	port int
	cmd  *exec.Cmd
	log  *os.File
}

// startRedis starts redis-server on a free loopback port, without
// persistence, waits until it answers PING, and stops it when the test
// ends.
func startRedis(t testing.TB) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is not installed (%v): these tests need a real Redis; install it with `apt-get install -y redis-server`", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	log, err := os.CreateTemp(t.TempDir(), "redis-*.log")
	if err != nil {
		t.Fatal(err)
	}
	r := &redisServer{t: t, port: port, log: log}
	r.start()
	t.Cleanup(r.Kill)
	return r
}

func (r *redisServer) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

func (r *redisServer) start() {
	r.t.Helper()
	r.cmd = exec.Command("redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--protected-mode", "no")
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ping(r.Addr()) == nil {
			return
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(r.log.Name())
			r.Kill()
			r.t.Fatalf("redis-server on port %d did not answer PING within 10 s; its log:\n%s", r.port, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill stops the server at once (SIGKILL) and waits for it to exit.
func (r *redisServer) Kill() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	r.cmd.Process.Kill()
	r.cmd.Wait()
	r.cmd = nil
}

// Stop suspends the server (SIGSTOP): connections are accepted by the
// kernel but nothing is answered, as with a Redis that hangs.
func (r *redisServer) Stop() {
	r.t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		r.t.Fatal(err)
	}
}

// Continue resumes a stopped server.
func (r *redisServer) Continue() {
	r.t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		r.t.Fatal(err)
	}
}

// Restart starts a fresh, empty server on the same port.
func (r *redisServer) Restart() {
	r.t.Helper()
	r.Kill()
	r.start()
}

// Client returns a client of the server, closed when the test ends.
func (r *redisServer) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr:                  r.Addr(),
		ContextTimeoutEnabled: true,
		DialTimeout:           time.Second,
		MaxRetries:            -1,
	})
	r.t.Cleanup(func() { c.Close() })
	return c
}

func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

func TestRedisHarness(t *testing.T) {
	r := startRedis(t)
	c := r.Client()
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	r.Restart()
	if v, err := c.Get(ctx, "k").Result(); err != redis.Nil {
		t.Errorf("after Restart, GET = %q, %v; want an empty server", v, err)
	}
	r.Kill()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Error("PING succeeded after Kill")
	}
}
