package localaudio

/*
#cgo pkg-config: alsa jack
#include <alsa/asoundlib.h>
#include <jack/jack.h>

static void zhiyin_alsa_quiet(const char *file, int line, const char *function, int err, const char *fmt, ...) {}
static void zhiyin_jack_quiet(const char *msg) {}

// zhiyin_quiet stops ALSA and JACK from printing their device probes
// ("cannot find card '0'", "jack server is not running") on standard
// error each time PortAudio scans: PortAudio reports real failures itself.
static void zhiyin_quiet(void) {
	snd_lib_error_set_handler(zhiyin_alsa_quiet);
	jack_set_error_function(zhiyin_jack_quiet);
	jack_set_info_function(zhiyin_jack_quiet);
}
*/
import "C"

// quietBackends silences the audio back ends' own console messages.
// Idempotent; call before portaudio.Initialize.
func quietBackends() { C.zhiyin_quiet() }
