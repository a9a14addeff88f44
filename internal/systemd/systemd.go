// Package systemd is the daemon's side of the service manager protocol:
// sd_notify states (READY, STATUS, WATCHDOG, RELOADING, STOPPING), the
// watchdog interval, and socket-activated listeners. Outside systemd (no
// NOTIFY_SOCKET, no LISTEN_FDS) every call is a cheap no-op.
package systemd

import (
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// States sent with Notifier.Notify.
const (
	Ready     = daemon.SdNotifyReady
	Stopping  = daemon.SdNotifyStopping
	Reloading = daemon.SdNotifyReloading
	Watchdog  = daemon.SdNotifyWatchdog
)

// Status returns a STATUS= line (one line; newlines are replaced).
func Status(format string, args ...any) string {
	return "STATUS=" + strings.ReplaceAll(fmt.Sprintf(format, args...), "\n", " ")
}

// MonotonicNow returns the MONOTONIC_USEC= line systemd wants with
// RELOADING=1 (Type=notify-reload).
func MonotonicNow() string {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return fmt.Sprintf("MONOTONIC_USEC=%d", ts.Nano()/1000)
}

// Notifier sends sd_notify messages. Safe for concurrent use.
type Notifier struct {
	log *slog.Logger
}

// NewNotifier returns a notifier that logs send failures at debug level.
func NewNotifier(log *slog.Logger) *Notifier { return &Notifier{log: log} }

// Notify sends the states in one datagram. It reports whether systemd is
// listening (NOTIFY_SOCKET set and the send worked).
func (n *Notifier) Notify(states ...string) bool {
	sent, err := daemon.SdNotify(false, strings.Join(states, "\n"))
	if err != nil {
		n.log.Debug("sd_notify failed", "err", err)
	}
	return sent
}

// WatchdogInterval returns how often systemd expects WATCHDOG=1 (the full
// WatchdogSec; ping at half of it), or false when the watchdog is off.
func WatchdogInterval() (time.Duration, bool) {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil || d <= 0 {
		return 0, false
	}
	return d, true
}

// Listeners returns the sockets passed by socket activation (LISTEN_FDS),
// or none. It unsets the LISTEN_* variables so children do not inherit them.
func Listeners() ([]net.Listener, error) {
	lns, err := activation.Listeners()
	if err != nil {
		return nil, fmt.Errorf("socket activation: %w", err)
	}
	out := lns[:0]
	for _, l := range lns {
		if l != nil { // non-stream sockets come back nil
			out = append(out, l)
		}
	}
	return out, nil
}
