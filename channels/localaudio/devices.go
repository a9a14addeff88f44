package localaudio

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gordonklaus/portaudio"
)

// Device is one audio device as PortAudio sees it.
type Device struct {
	// Index is PortAudio's device index (valid until the next scan).
	Index int
	// Name is what channels.localaudio.input/output match; HostAPI is the backend
	// ("ALSA", "JACK Audio Connection Kit", ...).
	Name, HostAPI string
	// MaxInput and MaxOutput are the device's channel counts; a capture
	// device has MaxInput > 0.
	MaxInput, MaxOutput int
	// DefaultRate is the device's preferred sample rate in Hz.
	DefaultRate float64
	// DefaultInput and DefaultOutput mark the system defaults (what ""
	// opens).
	DefaultInput, DefaultOutput bool
}

// String is the device as the errors and `--list-devices` show it.
func (d Device) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%q (%s", d.Name, d.HostAPI)
	if d.MaxInput > 0 {
		fmt.Fprintf(&b, ", in %d", d.MaxInput)
	}
	if d.MaxOutput > 0 {
		fmt.Fprintf(&b, ", out %d", d.MaxOutput)
	}
	fmt.Fprintf(&b, ", %g Hz", d.DefaultRate)
	if d.DefaultInput {
		b.WriteString(", default input")
	}
	if d.DefaultOutput {
		b.WriteString(", default output")
	}
	b.WriteString(")")
	return b.String()
}

// Devices scans the system's audio devices (for `zhiyin voice
// --list-devices`). It does I/O (PortAudio probes every backend, which may
// take a few hundred milliseconds), is safe for concurrent use, and may run
// while a Line is running. The caller owns the result.
func Devices() ([]Device, error) {
	paMu.Lock()
	defer paMu.Unlock()
	if err := paInit(); err != nil {
		return nil, fmt.Errorf("list audio devices: %w", err)
	}
	defer paTerminate()
	devs, _, err := scan()
	if err != nil {
		return nil, fmt.Errorf("list audio devices: %w", err)
	}
	return devs, nil
}

// scan lists the devices and PortAudio's own infos, index for index.
// Callers hold paMu with PortAudio initialised.
func scan() ([]Device, []*portaudio.DeviceInfo, error) {
	infos, err := portaudio.Devices()
	if err != nil {
		return nil, nil, err
	}
	defIn, defOut := -1, -1
	if host, err := portaudio.DefaultHostApi(); err == nil {
		if host.DefaultInputDevice != nil {
			defIn = host.DefaultInputDevice.Index
		}
		if host.DefaultOutputDevice != nil {
			defOut = host.DefaultOutputDevice.Index
		}
	}
	devs := make([]Device, len(infos))
	for i, d := range infos {
		host := ""
		if d.HostApi != nil {
			host = d.HostApi.Name
		}
		devs[i] = Device{
			Index:         d.Index,
			Name:          d.Name,
			HostAPI:       host,
			MaxInput:      d.MaxInputChannels,
			MaxOutput:     d.MaxOutputChannels,
			DefaultRate:   d.DefaultSampleRate,
			DefaultInput:  d.Index == defIn,
			DefaultOutput: d.Index == defOut,
		}
	}
	return devs, infos, nil
}

// pick finds the device for channels.localaudio.<key> (key "input" or "output"):
// the default for "", else the one whose name is name, else the one whose
// name contains it (case-insensitive). Only devices with channels in that
// direction count. The error wraps ErrDeviceNotFound or ErrAmbiguousDevice
// and lists the candidates.
func pick(devs []Device, key, name string) (int, error) {
	input := key == "input"
	var cands []Device
	for _, d := range devs {
		if (input && d.MaxInput > 0) || (!input && d.MaxOutput > 0) {
			cands = append(cands, d)
		}
	}
	list := func(ds []Device) string {
		if len(ds) == 0 {
			return "none"
		}
		s := make([]string, len(ds))
		for i, d := range ds {
			s[i] = d.String()
		}
		return strings.Join(s, "; ")
	}
	if name == "" {
		for _, d := range cands {
			if (input && d.DefaultInput) || (!input && d.DefaultOutput) {
				return d.Index, nil
			}
		}
		return 0, fmt.Errorf("%w: channels.localaudio.%s: there is no default %s device; %s devices: %s; set channels.localaudio.%s to one of their names (`zhiyin voice --list-devices` lists them)",
			ErrDeviceNotFound, key, key, key, list(cands), key)
	}
	for _, d := range cands {
		if d.Name == name {
			return d.Index, nil
		}
	}
	var subs []Device
	for _, d := range cands {
		if strings.Contains(strings.ToLower(d.Name), strings.ToLower(name)) {
			subs = append(subs, d)
		}
	}
	switch len(subs) {
	case 1:
		return subs[0].Index, nil
	case 0:
		return 0, fmt.Errorf("%w: channels.localaudio.%s: no %s device matches %q; %s devices: %s; set channels.localaudio.%s to one of their names, or to \"\" for the default (`zhiyin voice --list-devices` lists them)",
			ErrDeviceNotFound, key, key, name, key, list(cands), key)
	default:
		return 0, fmt.Errorf("%w: channels.localaudio.%s: %q matches %d %s devices: %s; set channels.localaudio.%s to one exact name",
			ErrAmbiguousDevice, key, name, len(subs), key, list(subs), key)
	}
}

// isDeviceError says whether err is one of pick's.
func isDeviceError(err error) bool {
	return errors.Is(err, ErrDeviceNotFound) || errors.Is(err, ErrAmbiguousDevice)
}
