package systemd

import (
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNotify(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	n := NewNotifier(slog.New(slog.NewTextHandler(io.Discard, nil)))

	t.Setenv("NOTIFY_SOCKET", "")
	if n.Notify(Ready) {
		t.Error("Notify reported sending without NOTIFY_SOCKET")
	}
	t.Setenv("NOTIFY_SOCKET", path)
	if !n.Notify(Reloading, MonotonicNow(), Status("line one\nline two")) {
		t.Fatal("Notify did not send")
	}
	buf := make([]byte, 512)
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	k, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(buf[:k]), "\n")
	if len(lines) != 3 || lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") || lines[2] != "STATUS=line one line two" {
		t.Errorf("datagram %q", lines)
	}
}

func TestWatchdogInterval(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "")
	if _, ok := WatchdogInterval(); ok {
		t.Error("watchdog on without WATCHDOG_USEC")
	}
	t.Setenv("WATCHDOG_USEC", "30000000")
	t.Setenv("WATCHDOG_PID", "")
	if d, ok := WatchdogInterval(); !ok || d != 30*time.Second {
		t.Errorf("WatchdogInterval = %v, %v", d, ok)
	}
	t.Setenv("WATCHDOG_USEC", "garbage")
	if _, ok := WatchdogInterval(); ok {
		t.Error("garbage WATCHDOG_USEC accepted")
	}
}

func TestListenersWithoutActivation(t *testing.T) {
	t.Setenv("LISTEN_FDS", "")
	lns, err := Listeners()
	if err != nil || len(lns) != 0 {
		t.Errorf("Listeners() = %v, %v", lns, err)
	}
}
