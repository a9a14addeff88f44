package localaudio

import (
	"fmt"
	"sync"

	"github.com/gordonklaus/portaudio"
)

// paMu serialises every call into PortAudio's process-global state: the Go
// binding counts Initialize/Terminate and caches the device list in plain
// package variables, so two goroutines (the daemon's kiosk line and a
// `--list-devices`, or parallel tests) must not enter it at once. It is the
// one package-level variable, and it holds no state of ours.
var paMu sync.Mutex

// paInit initialises PortAudio for one user (PortAudio counts them); each
// successful call is matched by one paTerminate. Callers hold paMu.
func paInit() error {
	quietBackends()
	if err := portaudio.Initialize(); err != nil {
		return fmt.Errorf("initialise portaudio: %w", err)
	}
	return nil
}

// paTerminate releases one paInit. Callers hold paMu.
func paTerminate() {
	_ = portaudio.Terminate() // only fails when not initialised
}
