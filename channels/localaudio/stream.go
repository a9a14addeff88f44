package localaudio

import (
	"fmt"
	"math"
	"time"

	"github.com/gordonklaus/portaudio"
)

// devices are the open input and output streams of a running Line.
type devices struct {
	in, out         *portaudio.Stream
	inName, outName string
	inRate, outRate int // the rates the devices run at
	inBuf, outBuf   []float32
	inited          bool
}

// open chooses and opens the devices: input started, output opened (the
// player starts it when there is something to play). On error everything
// opened so far is closed.
func (l *Line) open() (_ *devices, err error) {
	paMu.Lock()
	defer paMu.Unlock()
	d := &devices{}
	defer func() {
		if err != nil {
			d.closeLocked()
		}
	}()
	if err := paInit(); err != nil {
		return nil, fmt.Errorf("open audio devices: %w", err)
	}
	d.inited = true
	devs, infos, err := scan()
	if err != nil {
		return nil, fmt.Errorf("open audio devices: list them: %w", err)
	}
	inIdx, err := pick(devs, "input", l.cfg.Input)
	if err != nil {
		return nil, err
	}
	outIdx, err := pick(devs, "output", l.cfg.Output)
	if err != nil {
		return nil, err
	}
	in, out := infos[inIdx], infos[outIdx]
	d.inName, d.outName = in.Name, out.Name

	inP := portaudio.StreamParameters{Input: portaudio.StreamDeviceParameters{Device: in, Channels: 1, Latency: in.DefaultLowInputLatency}}
	if d.inRate, err = l.rate(&inP, in, "input"); err != nil {
		return nil, err
	}
	d.inBuf = make([]float32, l.cfg.frameLen(d.inRate))
	inP.FramesPerBuffer = len(d.inBuf)
	if d.in, err = portaudio.OpenStream(inP, d.inBuf); err != nil {
		return nil, fmt.Errorf("open input device %q (channels.localaudio.input) at %d Hz: %w", in.Name, d.inRate, err)
	}

	outP := portaudio.StreamParameters{Output: portaudio.StreamDeviceParameters{Device: out, Channels: 1, Latency: out.DefaultLowOutputLatency}}
	if d.outRate, err = l.rate(&outP, out, "output"); err != nil {
		return nil, err
	}
	d.outBuf = make([]float32, l.cfg.frameLen(d.outRate))
	outP.FramesPerBuffer = len(d.outBuf)
	if d.out, err = portaudio.OpenStream(outP, d.outBuf); err != nil {
		return nil, fmt.Errorf("open output device %q (channels.localaudio.output) at %d Hz: %w", out.Name, d.outRate, err)
	}
	if err := d.in.Start(); err != nil {
		return nil, fmt.Errorf("start input device %q (channels.localaudio.input): %w", in.Name, err)
	}
	if d.inRate != l.cfg.SampleRate || d.outRate != l.cfg.SampleRate {
		l.log.Info("localaudio: resampling for devices that refuse the configured rate",
			logRate, l.cfg.SampleRate, "input_rate", d.inRate, "output_rate", d.outRate)
	}
	return d, nil
}

// rate sets p.SampleRate to the configured rate when the device takes it,
// else to the device's default rate (resampled in Go), and returns it.
func (l *Line) rate(p *portaudio.StreamParameters, dev *portaudio.DeviceInfo, key string) (int, error) {
	buf := make([]float32, 1)
	p.SampleRate = float64(l.cfg.SampleRate)
	err := portaudio.IsFormatSupported(*p, buf)
	if err == nil {
		return l.cfg.SampleRate, nil
	}
	def := int(math.Round(dev.DefaultSampleRate))
	if def >= 8000 && def <= 384000 && def != l.cfg.SampleRate {
		p.SampleRate = float64(def)
		if err2 := portaudio.IsFormatSupported(*p, buf); err2 == nil {
			if (int64(def)*int64(l.cfg.Frame))%int64(time.Second) != 0 {
				return 0, fmt.Errorf("%s device %q runs at %d Hz only, where channels.localaudio.frame %v is not a whole number of samples: set channels.localaudio.frame to 10ms or 20ms", key, dev.Name, def, l.cfg.Frame)
			}
			return def, nil
		}
	}
	return 0, fmt.Errorf("%s device %q (channels.localaudio.%s) takes mono float audio neither at channels.localaudio.sample_rate %d Hz nor at its default %g Hz: %w", key, dev.Name, key, l.cfg.SampleRate, dev.DefaultSampleRate, err)
}

// close closes the streams and releases PortAudio. Nil-safe, idempotent,
// works on a half-opened value.
func (d *devices) close() {
	if d == nil {
		return
	}
	paMu.Lock()
	defer paMu.Unlock()
	d.closeLocked()
}

func (d *devices) closeLocked() {
	if d.in != nil {
		_ = d.in.Close() // closing aborts; nothing to do about an error
		d.in = nil
	}
	if d.out != nil {
		_ = d.out.Close()
		d.out = nil
	}
	if d.inited {
		paTerminate()
		d.inited = false
	}
}
