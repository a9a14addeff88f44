package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// zhiyinBin is the binary under test: $ZHIYIN_TEST_BINARY (set by the
// Makefile) or one built by TestMain.
var zhiyinBin string

func TestMain(m *testing.M) {
	// The daemon needs ONNX Runtime; a binary outside the source tree finds
	// the fetched copy only through the environment.
	if os.Getenv("ZHIYIN_ORT_LIB") == "" {
		if lib, err := filepath.Abs("../../third_party/onnxruntime/libonnxruntime.so.1"); err == nil {
			if _, err := os.Stat(lib); err == nil {
				os.Setenv("ZHIYIN_ORT_LIB", lib)
			} else {
				fmt.Fprintln(os.Stderr, "warning: no ONNX Runtime at", lib, "- run scripts/fetch-deps.sh (make test does)")
			}
		}
	}
	zhiyinBin = os.Getenv("ZHIYIN_TEST_BINARY")
	cleanup := func() {}
	if zhiyinBin == "" {
		dir, err := os.MkdirTemp("", "zhiyin-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		cleanup = func() { os.RemoveAll(dir) }
		zhiyinBin = filepath.Join(dir, "zhiyin")
		out, err := exec.Command("go", "build", "-o", zhiyinBin, ".").CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build zhiyin: %v\n%s", err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// notifySocket is a NOTIFY_SOCKET the test owns; it collects every state
// line the daemon sends.
type notifySocket struct {
	path  string
	conn  *net.UnixConn
	mu    sync.Mutex
	lines []string
	cond  chan struct{}
}

func newNotifySocket(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	n := &notifySocket{path: path, conn: conn, cond: make(chan struct{}, 1)}
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.lines = append(n.lines, strings.Split(string(buf[:k]), "\n")...)
			n.mu.Unlock()
			select {
			case n.cond <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return n
}

func (n *notifySocket) snapshot() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.lines...)
}

func (n *notifySocket) count(line string) int {
	c := 0
	for _, l := range n.snapshot() {
		if l == line {
			c++
		}
	}
	return c
}

// waitFor waits until a line satisfying ok has arrived after index from.
func (n *notifySocket) waitFor(t *testing.T, from int, what string, ok func(string) bool) int {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		lines := n.snapshot()
		for i := from; i < len(lines); i++ {
			if ok(lines[i]) {
				return i
			}
		}
		select {
		case <-n.cond:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no %s from the daemon; got %q", what, lines)
		}
	}
}

func eq(s string) func(string) bool { return func(l string) bool { return l == s } }

// daemonProc is a running `zhiyin serve`.
type daemonProc struct {
	cmd  *exec.Cmd
	url  string
	logs *lockedBuf
	done chan error
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startDaemon runs the binary with args and env; it waits until /healthz
// answers. The daemon is killed at cleanup if still running.
func startDaemon(t *testing.T, addr string, env []string, args ...string) *daemonProc {
	t.Helper()
	cmd := exec.Command(zhiyinBin, args...)
	cmd.Env = append(os.Environ(), env...)
	logs := &lockedBuf{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemonProc{cmd: cmd, url: "http://" + addr, logs: logs, done: make(chan error, 1)}
	go func() { d.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-d.done
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-d.done:
			d.done <- err
			t.Fatalf("daemon exited early: %v\n%s", err, logs.String())
		default:
		}
		if resp, err := http.Get(d.url + "/healthz"); err == nil {
			resp.Body.Close()
			return d
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("daemon did not answer on %s\n%s", addr, logs.String())
	return nil
}

// waitLog waits for the daemon's log to contain s: the log reaches the
// test through a pipe, after the notifications that announce the event.
func (d *daemonProc) waitLog(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(d.logs.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("log lacks %q:\n%s", s, d.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (d *daemonProc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

func (d *daemonProc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-d.done:
		return d.cmd.ProcessState.ExitCode()
	case <-time.After(30 * time.Second):
		t.Fatalf("daemon did not exit\n%s", d.logs.String())
		return -1
	}
}

func get(t *testing.T, url, key string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// runCLI runs the binary to completion.
func runCLI(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(zhiyinBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatal(err)
		}
		code = ee.ExitCode()
	}
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSystemdLifecycle: READY only after start-up, STATUS lines, WATCHDOG
// pings, RELOADING then READY on SIGHUP, STOPPING on SIGTERM, exit 0.
func TestSystemdLifecycle(t *testing.T) {
	ns := newNotifySocket(t)
	addr := freeAddr(t)
	dir := t.TempDir()
	d := startDaemon(t, addr, []string{"NOTIFY_SOCKET=" + ns.path, "WATCHDOG_USEC=300000"},
		"serve", "--config", "builtin", "--listen", addr, "--data-dir", dir)

	ready := ns.waitFor(t, 0, "READY=1", eq("READY=1"))
	lines := ns.snapshot()
	if !strings.HasPrefix(lines[0], "STATUS=starting") {
		t.Errorf("first notification %q, want STATUS=starting", lines[0])
	}
	_ = ready
	if code, body := get(t, d.url+"/readyz", ""); code != 200 {
		t.Errorf("readyz after READY=1: %d %s", code, body)
	}
	// Watchdog pings keep coming (interval 300ms → every 150ms).
	before := ns.count("WATCHDOG=1")
	time.Sleep(700 * time.Millisecond)
	if got := ns.count("WATCHDOG=1") - before; got < 2 {
		t.Errorf("%d watchdog pings in 700ms, want ≥2", got)
	}
	// SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1 again.
	mark := len(ns.snapshot())
	d.signal(t, syscall.SIGHUP)
	r := ns.waitFor(t, mark, "RELOADING=1", eq("RELOADING=1"))
	ns.waitFor(t, r, "MONOTONIC_USEC", func(l string) bool { return strings.HasPrefix(l, "MONOTONIC_USEC=") })
	ns.waitFor(t, r, "READY=1 after reload", eq("READY=1"))
	// SIGTERM: STOPPING=1 and a clean exit.
	mark = len(ns.snapshot())
	d.signal(t, syscall.SIGTERM)
	ns.waitFor(t, mark, "STOPPING=1", eq("STOPPING=1"))
	if code := d.wait(t); code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}
}

// TestWatchdogStopsWhenUnhealthy: once the health check fails (the database
// file is deleted under the daemon), WATCHDOG=1 stops and /healthz says why.
func TestWatchdogStopsWhenUnhealthy(t *testing.T) {
	ns := newNotifySocket(t)
	addr := freeAddr(t)
	dir := t.TempDir()
	d := startDaemon(t, addr, []string{"NOTIFY_SOCKET=" + ns.path, "WATCHDOG_USEC=200000"},
		"serve", "--config", "builtin", "--listen", addr, "--data-dir", dir)
	ns.waitFor(t, 0, "READY=1", eq("READY=1"))
	ns.waitFor(t, 0, "a watchdog ping", eq("WATCHDOG=1"))
	if err := os.Remove(filepath.Join(dir, "zhiyin.db")); err != nil {
		t.Fatal(err)
	}
	mark := len(ns.snapshot())
	ns.waitFor(t, mark, "STATUS=unhealthy", func(l string) bool { return strings.HasPrefix(l, "STATUS=unhealthy") })
	pings := ns.count("WATCHDOG=1")
	time.Sleep(600 * time.Millisecond) // 6 ping intervals
	if got := ns.count("WATCHDOG=1"); got != pings {
		t.Errorf("watchdog kept pinging while unhealthy: %d → %d", pings, got)
	}
	code, body := get(t, d.url+"/healthz", "")
	if code != 503 || !strings.Contains(body, "removed or replaced") {
		t.Errorf("healthz while unhealthy: %d %s", code, body)
	}
	d.signal(t, syscall.SIGTERM)
	d.wait(t)
}

// TestReload: a bad config on SIGHUP is rejected and the old one keeps
// running; a good one is applied without dropping connections.
func TestReload(t *testing.T) {
	ns := newNotifySocket(t)
	addr := freeAddr(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "zhiyin.yaml")
	good := fmt.Sprintf("data_dir: %s\nserver:\n  listen: %s\nauth:\n  allow_loopback: true\n", dir, addr)
	writeFile(t, cfgPath, good)
	d := startDaemon(t, addr, []string{"NOTIFY_SOCKET=" + ns.path}, "serve", "--config", cfgPath)
	ns.waitFor(t, 0, "READY=1", eq("READY=1"))

	// A keep-alive connection opened before the reloads must survive them:
	// every request after the first reuses it.
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	requests := 0
	whoami := func() int {
		t.Helper()
		reused := false
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
		})
		req, _ := http.NewRequestWithContext(ctx, "GET", d.url+"/v1/auth/whoami", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if requests > 0 && !reused {
			t.Errorf("request %d opened a new connection: the reload dropped the old one", requests)
		}
		requests++
		return resp.StatusCode
	}
	if code := whoami(); code != 200 {
		t.Fatalf("whoami: %d", code)
	}

	writeFile(t, cfgPath, good+"limits:\n  per_ip: {per_second: -1}\n  bogus: 1\n")
	mark := len(ns.snapshot())
	d.signal(t, syscall.SIGHUP)
	ns.waitFor(t, mark, "READY=1 after rejected reload", eq("READY=1"))
	ns.waitFor(t, mark, "STATUS naming the rejection", func(l string) bool {
		return strings.HasPrefix(l, "STATUS=ready; last reload rejected: "+cfgPath+":8: limits.bogus: unknown key")
	})
	d.waitLog(t, "configuration reload rejected; the running configuration stays")
	if code := whoami(); code != 200 { // still serving, loopback still allowed
		t.Errorf("after rejected reload: %d", code)
	}

	// A valid change applies (loopback access switched off); a change that
	// needs a restart (body_limit) is named and kept at its running value.
	writeFile(t, cfgPath, fmt.Sprintf("data_dir: %s\nserver:\n  listen: %s\n  body_limit: 2MiB\nauth:\n  allow_loopback: false\n", dir, addr))
	mark = len(ns.snapshot())
	d.signal(t, syscall.SIGHUP)
	ns.waitFor(t, mark, "READY=1 after reload", eq("READY=1"))
	if code := whoami(); code != 401 {
		t.Errorf("after reload turning loopback off: %d, want 401", code)
	}
	d.waitLog(t, "setting changed but needs a restart; keeping the running value\" setting=server")
	d.signal(t, syscall.SIGTERM)
	if code := d.wait(t); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// TestGracefulDrain: a request in flight when SIGTERM arrives completes
// (its effect committed) and the daemon then exits 0.
func TestGracefulDrain(t *testing.T) {
	addr := freeAddr(t)
	dir := t.TempDir()
	d := startDaemon(t, addr, nil, "serve", "--config", "builtin", "--listen", addr, "--data-dir", dir)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"name":"drained","role":"client"}`
	head := fmt.Sprintf("POST /v1/admin/apikeys HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
	if _, err := io.WriteString(conn, head+body[:10]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	d.signal(t, syscall.SIGTERM)
	time.Sleep(300 * time.Millisecond) // the daemon is draining now
	// New connections are refused while it drains.
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("new connection accepted while draining")
	}
	if _, err := io.WriteString(conn, body[10:]); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("in-flight request lost: %v\n%s", err, d.logs.String())
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 || !strings.Contains(string(b), `"name":"drained"`) {
		t.Errorf("in-flight request: %d %s", resp.StatusCode, b)
	}
	conn.Close()
	if code := d.wait(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	// The key created by the drained request was committed.
	cfgPath := filepath.Join(dir, "z.yaml")
	writeFile(t, cfgPath, "data_dir: "+dir+"\n")
	code, out, errOut := runCLI(t, nil, "apikey", "list", "--json", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, `"name": "drained"`) {
		t.Errorf("drained request's key not in the database: %d %s %s", code, out, errOut)
	}
}

// TestSocketActivation: with systemd-socket-activate passing the listener,
// the daemon serves on it instead of binding its own.
func TestSocketActivation(t *testing.T) {
	sa, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		t.Skip("needs systemd-socket-activate (Debian package systemd)")
	}
	addr := freeAddr(t)
	dir := t.TempDir()
	// server.listen names a different port: the passed socket must win.
	other := freeAddr(t)
	// systemd-socket-activate passes only the variables named with -E.
	cmd := exec.Command(sa, "-l", addr, "-E", "ZHIYIN_ORT_LIB", zhiyinBin, "serve", "--config", "builtin", "--listen", other, "--data-dir", dir)
	logs := &lockedBuf{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
			if code := cmd.ProcessState.ExitCode(); code != 0 {
				t.Errorf("exit code %d after SIGTERM", code)
			}
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("did not exit after SIGTERM:\n%s", logs.String())
		}
	}()
	var code int
	var body string
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			code, body = resp.StatusCode, string(b)
			if code == 200 {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code != 200 {
		t.Fatalf("no answer on the activated socket: %d %s\n%s", code, body, logs.String())
	}
	(&daemonProc{logs: logs}).waitLog(t, "via=\"socket activation\"")
	if c, err := net.DialTimeout("tcp", other, 200*time.Millisecond); err == nil {
		c.Close()
		t.Error("daemon also bound server.listen")
	}
}

// TestCLIWhileServing: apikey and backup work beside a running daemon; the
// daemon sees new and revoked keys at once.
func TestCLIWhileServing(t *testing.T) {
	addr := freeAddr(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "zhiyin.yaml")
	writeFile(t, cfgPath, fmt.Sprintf("data_dir: %s\nserver:\n  listen: %s\nauth:\n  allow_loopback: false\n", dir, addr))
	d := startDaemon(t, addr, nil, "serve", "--config", cfgPath)

	code, key, errOut := runCLI(t, nil, "apikey", "create", "--name", "ops", "--role", "admin", "--config", cfgPath)
	key = strings.TrimSpace(key)
	if code != 0 || !strings.HasPrefix(key, "zy_") || !strings.Contains(errOut, "shown only once") {
		t.Fatalf("apikey create: %d %q %q", code, key, errOut)
	}
	if c, body := get(t, d.url+"/v1/admin/apikeys", key); c != 200 || !strings.Contains(body, `"name":"ops"`) {
		t.Errorf("new key against the daemon: %d %s", c, body)
	}
	code, out, _ := runCLI(t, nil, "apikey", "list", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "ops") || !strings.Contains(out, "admin") {
		t.Errorf("apikey list: %d %s", code, out)
	}
	// Backup while serving, then prove it opens and holds the key.
	bk := filepath.Join(t.TempDir(), "b.db")
	code, out, errOut = runCLI(t, nil, "backup", "--out", bk, "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "integrity ok") {
		t.Fatalf("backup: %d %s %s", code, out, errOut)
	}
	code, _, errOut = runCLI(t, nil, "backup", "--out", bk, "--config", cfgPath)
	if code != 1 || !strings.Contains(errOut, bk) {
		t.Errorf("backup over an existing file: %d %s", code, errOut)
	}
	// Restore is refused while the daemon runs.
	code, _, errOut = runCLI(t, nil, "restore", bk, "--config", cfgPath)
	if code != 1 || !strings.Contains(errOut, "stop it first") {
		t.Errorf("restore while serving: %d %s", code, errOut)
	}
	code, out, _ = runCLI(t, nil, "apikey", "revoke", "ops", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "revoked") {
		t.Errorf("revoke: %d %s", code, out)
	}
	if c, _ := get(t, d.url+"/v1/admin/apikeys", key); c != 401 {
		t.Errorf("revoked key still works: %d", c)
	}
	d.signal(t, syscall.SIGTERM)
	d.wait(t)
	// Restore the backup (taken before the revoke): the key works again.
	code, out, errOut = runCLI(t, nil, "restore", bk, "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "previous database is kept as") {
		t.Fatalf("restore: %d %s %s", code, out, errOut)
	}
	d = startDaemon(t, addr, nil, "serve", "--config", cfgPath)
	if c, body := get(t, d.url+"/v1/admin/apikeys", key); c != 200 {
		t.Errorf("key from the restored backup: %d %s", c, body)
	}
}

// TestRelativeDataDir: `make run` passes --data-dir ./var; it resolves
// against the working directory.
func TestRelativeDataDir(t *testing.T) {
	wd := t.TempDir()
	addr := freeAddr(t)
	cmd := exec.Command(zhiyinBin, "serve", "--config", "builtin", "--listen", addr, "--data-dir", "./var")
	cmd.Dir = wd
	var out lockedBuf
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(wd, "var", "zhiyin.db")); err != nil {
		t.Errorf("database not under ./var of the working directory: %v\n%s", err, out.String())
	}
}

// TestFailedStartExits: a daemon that cannot start (no ONNX Runtime) says
// why, exits 1 promptly and leaves nothing listening.
func TestFailedStartExits(t *testing.T) {
	addr := freeAddr(t)
	cmd := exec.Command(zhiyinBin, "serve", "--config", "builtin", "--listen", addr, "--data-dir", t.TempDir())
	cmd.Env = append(os.Environ(), "ZHIYIN_ORT_LIB=/nonexistent/libonnxruntime.so.1")
	var out lockedBuf
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("daemon did not exit after a failed start:\n%s", out.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if !strings.Contains(out.String(), "start ONNX Runtime: ONNX Runtime library not found: $ZHIYIN_ORT_LIB is /nonexistent/libonnxruntime.so.1") {
		t.Errorf("reason not given:\n%s", out.String())
	}
	if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
		c.Close()
		t.Error("still listening after exit")
	}
}

// TestBadCommandLines: usage errors exit 2 with a message.
func TestBadCommandLines(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"serve", "--nope"}, 2, "flag provided but not defined: -nope"},
		{[]string{"serve", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"backup"}, 2, "--out FILE is required"},
		{[]string{"restore"}, 2, "name exactly one backup FILE"},
		{[]string{"apikey"}, 2, "name a subcommand: create, list or revoke"},
		{[]string{"apikey", "rotate"}, 2, `unknown subcommand "rotate"`},
		{[]string{"apikey", "create", "--config", "builtin"}, 2, "--name NAME is required"},
		{[]string{"apikey", "revoke", "--config", "builtin"}, 2, "name exactly one key id or name to revoke"},
		{[]string{"apikey", "create", "--name", "x", "--role", "root", "--config", "builtin"}, 2, `--role: unknown role "root"`},
		{[]string{"serve", "--config", "builtin", "--listen", "nope"}, 1, `server.listen: invalid address "nope"`},
		{[]string{"check-config", "--config", "/nonexistent.yaml"}, 1, "config file /nonexistent.yaml does not exist"},
	}
	for _, tc := range cases {
		code, _, errOut := runCLI(t, nil, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d containing %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
	code, out, _ := runCLI(t, nil, "--help")
	for _, c := range commands() {
		if !strings.Contains(out, "  "+c.name) {
			t.Errorf("--help does not list %s", c.name)
		}
	}
	if code != 0 {
		t.Errorf("--help exit %d", code)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, nil, "version", "--json", "--config", "builtin")
	var vi versionInfo
	if err := json.Unmarshal([]byte(out), &vi); code != 0 || err != nil {
		t.Fatalf("version: %d %v %s", code, err, out)
	}
	if vi.GoVersion == "" || vi.Version == "" {
		t.Errorf("version info: %+v", vi)
	}
	if vi.ORTError == "" && (vi.ORTVersion == "" || !strings.HasSuffix(vi.ORTLibrary, "libonnxruntime.so.1")) {
		t.Errorf("ORT: %+v", vi)
	}
	// A library path that does not exist is reported, not fatal.
	code, out, _ = runCLI(t, []string{"ZHIYIN_ORT_LIB=/nonexistent/libonnxruntime.so.1"}, "version", "--config", "builtin")
	if code != 0 || !strings.Contains(out, "onnxruntime: not loaded: ONNX Runtime library not found: $ZHIYIN_ORT_LIB is /nonexistent/libonnxruntime.so.1") {
		t.Errorf("version with a bad library: %d %s", code, out)
	}
}

// TestJWTEndToEnd: a JWT secret from a *_file key, checked by the running
// daemon: valid, expired, wrong audience, client on an admin route.
func TestJWTEndToEnd(t *testing.T) {
	addr := freeAddr(t)
	dir := t.TempDir()
	secret := "an-hs256-secret-that-is-long-enough-0123456789"
	writeFile(t, filepath.Join(dir, "jwt.secret"), secret+"\n")
	cfgPath := filepath.Join(dir, "zhiyin.yaml")
	writeFile(t, cfgPath, fmt.Sprintf("data_dir: %s\nserver:\n  listen: %s\nauth:\n  jwt:\n    hs256_secret_file: jwt.secret\n    audience: zhiyin-test\n    leeway: 0s\n", dir, addr))
	d := startDaemon(t, addr, nil, "serve", "--config", cfgPath)
	tok := func(claims jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	now := time.Now()
	valid := tok(jwt.MapClaims{"sub": "crm-7", "aud": "zhiyin-test", "exp": now.Add(time.Minute).Unix()})
	code, body := get(t, d.url+"/v1/auth/whoami", valid)
	if code != 200 || !strings.Contains(body, `"subject":"crm-7"`) || !strings.Contains(body, `"role":"client"`) {
		t.Errorf("valid token: %d %s", code, body)
	}
	for name, tk := range map[string]string{
		"expired":        tok(jwt.MapClaims{"sub": "crm-7", "aud": "zhiyin-test", "exp": now.Add(-time.Minute).Unix()}),
		"wrong audience": tok(jwt.MapClaims{"sub": "crm-7", "aud": "other", "exp": now.Add(time.Minute).Unix()}),
	} {
		if code, body := get(t, d.url+"/v1/auth/whoami", tk); code != 401 {
			t.Errorf("%s: %d %s", name, code, body)
		}
	}
	if code, _ := get(t, d.url+"/v1/admin/apikeys", valid); code != 403 {
		t.Errorf("client token on admin route: %d", code)
	}
	admin := tok(jwt.MapClaims{"sub": "ops", "aud": "zhiyin-test", "exp": now.Add(time.Minute).Unix(), "role": "admin"})
	if code, body := get(t, d.url+"/v1/admin/apikeys", admin); code != 200 {
		t.Errorf("admin token: %d %s", code, body)
	}
	if strings.Contains(d.logs.String(), secret) {
		t.Error("the JWT secret appears in the log")
	}
}

// doctorChecks runs `zhiyin doctor --json` and returns its checks by name.
func doctorChecks(t *testing.T, env []string, args ...string) (int, map[string]doctorCheck) {
	t.Helper()
	code, out, errOut := runCLI(t, env, append([]string{"doctor", "--json"}, args...)...)
	var list []doctorCheck
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("doctor --json: %v\n%s\n%s", err, out, errOut)
	}
	m := map[string]doctorCheck{}
	for _, c := range list {
		m[c.Name] = c
	}
	return code, m
}

type doctorCheck struct {
	Name     string `json:"name"`
	OK       bool   `json:"ok"`
	Optional bool   `json:"optional"`
	Detail   string `json:"detail"`
	Fix      string `json:"fix"`
}

// TestDoctor: the truth about this machine (no GPU: CUDA ✗ with the reason
// but optional, ORT and CPU ✓), and each failure with its fix and exit 1.
func TestDoctor(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	cfgPath := filepath.Join(dir, "zhiyin.yaml")
	base := fmt.Sprintf("data_dir: %s\nserver:\n  listen: %s\n", dir, addr)
	writeFile(t, cfgPath, base)

	code, c := doctorChecks(t, nil, "--config", cfgPath)
	if code != 0 {
		t.Errorf("doctor on a healthy setup exited %d: %+v", code, c)
	}
	for _, name := range []string{"config", "ONNX Runtime", "CPU", "data dir", "database", "listen address", "disk space"} {
		if !c[name].OK {
			t.Errorf("%s: %+v", name, c[name])
		}
	}
	if cu := c["CUDA"]; !cu.OK {
		if !cu.Optional || cu.Detail == "" || cu.Fix == "" {
			t.Errorf("CUDA ✗ must be optional with a reason and a fix here: %+v", cu)
		}
	}
	// The human form: ✓/✗ lines.
	_, out, _ := runCLI(t, nil, "doctor", "--config", cfgPath)
	if !strings.Contains(out, "✓ ONNX Runtime: ") || !strings.Contains(out, "✓ CPU: ") {
		t.Errorf("doctor output:\n%s", out)
	}

	// Requiring CUDA makes its ✗ count.
	writeFile(t, cfgPath, base+"inference:\n  provider: cuda\n")
	code, c = doctorChecks(t, nil, "--config", cfgPath)
	if !c["CUDA"].OK && (code != 1 || c["CUDA"].Optional) {
		t.Errorf("provider cuda without CUDA: exit %d, %+v", code, c["CUDA"])
	}

	// The listen address held by another program; then by zhiyin itself.
	writeFile(t, cfgPath, base)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	code, c = doctorChecks(t, nil, "--config", cfgPath)
	ln.Close()
	if code != 1 || c["listen address"].OK || !strings.Contains(c["listen address"].Fix, "ss -ltnp") {
		t.Errorf("port held by another program: exit %d %+v", code, c["listen address"])
	}
	d := startDaemon(t, addr, nil, "serve", "--config", cfgPath)
	code, c = doctorChecks(t, nil, "--config", cfgPath)
	if code != 0 || !strings.Contains(c["listen address"].Detail, "in use by a running zhiyin") || !c["database"].OK {
		t.Errorf("doctor beside the daemon: exit %d %+v %+v", code, c["listen address"], c["database"])
	}
	d.signal(t, syscall.SIGTERM)
	d.wait(t)

	// A corrupt database.
	db := filepath.Join(dir, "zhiyin.db")
	b, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	for i := 4096; i < len(b) && i < 4096*3; i++ {
		b[i] ^= 0x5a
	}
	writeFile(t, db, string(b))
	code, c = doctorChecks(t, nil, "--config", cfgPath)
	if code != 1 || c["database"].OK || !strings.Contains(c["database"].Fix, "zhiyin restore") {
		t.Errorf("corrupt database: exit %d %+v", code, c["database"])
	}
	os.Remove(db)

	// A missing ONNX Runtime and an invalid configuration.
	code, c = doctorChecks(t, []string{"ZHIYIN_ORT_LIB=/nonexistent/libonnxruntime.so.1"}, "--config", cfgPath)
	if code != 1 || c["ONNX Runtime"].OK || c["ONNX Runtime"].Fix == "" || c["CPU"].OK {
		t.Errorf("missing ORT: exit %d %+v %+v", code, c["ONNX Runtime"], c["CPU"])
	}
	writeFile(t, cfgPath, base+"bogus: 1\n")
	code, c = doctorChecks(t, nil, "--config", cfgPath)
	if code != 1 || c["config"].OK || !strings.Contains(c["config"].Detail, "bogus: unknown key") {
		t.Errorf("invalid config: exit %d %+v", code, c["config"])
	}
}

// TestModelAdminThroughDaemon: `zhiyin models` against a running daemon
// through the admin routes: live list with the EP, shadow start and report,
// promote and rollback with readiness following, and the routes' errors.
func TestModelAdminThroughDaemon(t *testing.T) {
	vad, err := filepath.Abs("../../third_party/models/silero-vad")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(vad, "model.yaml")); err != nil {
		t.Skip("needs the Silero VAD model folder: run scripts/fetch-deps.sh")
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	cfgPath := filepath.Join(dir, "zhiyin.yaml")
	writeFile(t, cfgPath, fmt.Sprintf("data_dir: %s\nserver:\n  listen: %s\nauth:\n  allow_loopback: true\n", dir, addr))
	cli := func(want int, args ...string) string {
		t.Helper()
		code, out, errOut := runCLI(t, nil, append(args, "--config", cfgPath)...)
		if code != want {
			t.Fatalf("zhiyin %v: exit %d, want %d\n%s%s", args, code, want, out, errOut)
		}
		return out + errOut
	}
	// Version 5 serves; a copy labelled 6 is the candidate.
	cli(0, "models", "install", vad)
	cand := filepath.Join(t.TempDir(), "silero-vad")
	if err := os.MkdirAll(cand, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"silero_vad.onnx", "model.yaml"} {
		b, err := os.ReadFile(filepath.Join(vad, f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "model.yaml" {
			b = []byte(strings.Replace(string(b), "version: \"5\"", "version: \"6\"", 1))
		}
		writeFile(t, filepath.Join(cand, f), string(b))
	}
	cli(0, "models", "install", "--candidate", cand)

	d := startDaemon(t, addr, nil, "serve", "--config", cfgPath)
	waitReady := func(detail string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			code, body := get(t, d.url+"/readyz", "")
			if code == 200 && strings.Contains(body, detail) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("readyz never showed %q: %d %s", detail, code, body)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitReady("silero-vad 5 warmed on cpu")
	if out := cli(0, "models", "list"); !strings.Contains(out, "silero-vad") || !strings.Contains(out, "cpu") {
		t.Errorf("live list:\n%s", out)
	}
	if out := cli(0, "models", "shadow", "silero-vad", "--start", "--fraction", "0.5", "--window", "10m"); !strings.Contains(out, "fraction 50%") {
		t.Errorf("shadow start:\n%s", out)
	}
	code, body := get(t, d.url+"/v1/admin/models/silero-vad", "")
	if code != 200 || !strings.Contains(body, `"candidate":"6"`) {
		t.Errorf("GET model report: %d %s", code, body)
	}
	if out := cli(0, "models", "promote", "silero-vad"); !strings.Contains(out, "5 → 6") {
		t.Errorf("promote:\n%s", out)
	}
	waitReady("promoted from 5")
	if out := cli(0, "models", "rollback", "silero-vad"); !strings.Contains(out, "6 → 5") {
		t.Errorf("rollback:\n%s", out)
	}
	waitReady("rolled back from 6")
	// Errors from the routes are JSON with the right status.
	code, body = get(t, d.url+"/v1/admin/models/no-such-model", "")
	if code != 404 || !strings.Contains(body, `"code":"not_found"`) {
		t.Errorf("unknown model: %d %s", code, body)
	}
	resp, err := http.Post(d.url+"/v1/admin/models/silero-vad/shadow", "application/json", strings.NewReader(`{"fraction": 2}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), "fraction must be in (0, 1]") {
		t.Errorf("bad shadow options: %d %s", resp.StatusCode, b)
	}
	d.signal(t, syscall.SIGTERM)
	if code := d.wait(t); code != 0 {
		t.Errorf("exit %d", code)
	}
}
