package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zhiyin/zhiyin/asr"
	"github.com/zhiyin/zhiyin/inference"
	"github.com/zhiyin/zhiyin/internal/health"
	"github.com/zhiyin/zhiyin/internal/httpserver"
)

// noModels is an asr.Models with nothing installed.
type noModels struct{}

func (noModels) Handle(name string) (*inference.Handle, error) {
	return nil, inference.ErrModelNotFound
}

// startSpeechRoutes serves mountASR on loopback with the engine e.
func startSpeechRoutes(tb testing.TB, e *asr.Engine) (string, *http.Client) {
	tb.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := prometheus.NewRegistry()
	srv, err := httpserver.New(httpserver.DefaultConfig(), httpserver.Dynamic{AllowLoopback: true}, httpserver.Deps{
		Log: log, Metrics: reg, Gatherer: reg, Readiness: health.NewReadiness(), Liveness: &health.Liveness{}, MapError: mapError,
	})
	if err != nil {
		tb.Fatal(err)
	}
	streams := newASRStreams(log)
	mountASR(srv, func() *asr.Engine { return e }, streams)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 10 * time.Second}
	tb.Cleanup(func() {
		client.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		streams.Close(ctx)
		srv.Shutdown(ctx)
		<-done
	})
	return "http://" + ln.Addr().String(), client
}

// FuzzSpeechUpload: whatever the content type, query and body, the speech
// routes answer a client error or 503 (no model), never a 500, and the
// connection serves the next request.
func FuzzSpeechUpload(f *testing.F) {
	wav := make([]byte, 44+640)
	copy(wav, "RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x80\x3e\x00\x00\x00\x7d\x00\x00\x02\x00\x10\x00data\x80\x02\x00\x00")
	ct, form := formBody("voice", "v.wav", "audio/wav", wav, "language", "zh")
	f.Add("/v1/asr", ct, "", form)
	f.Add("/v1/asr", ct, "", form[:len(form)/2])
	f.Add("/v1/asr", "multipart/form-data; boundary=x", "", []byte("--x\r\nContent-Disposition: form-data; name=\"voice\"; filename=\"a\"\r\n\r\nRIFF--x--"))
	f.Add("/v1/asr", "audio/wav", "", wav)
	f.Add("/v1/asr", "audio/wav", "language=fr", wav)
	f.Add("/v1/asr", "audio/pcm", "rate=16000", wav[44:])
	f.Add("/v1/asr", "audio/pcm;rate=8000", "rate=16000", wav[44:])
	f.Add("/v1/asr", "audio/PCMU", "itn=maybe", wav[44:])
	f.Add("/v1/asr", "audio/mpeg", "", []byte("ID3\x03\x00"))
	f.Add("/v1/asr", "text/plain; charset=\"", "", []byte("x"))
	f.Add("/v1/asr", "audio/wav", "", bytes.Repeat([]byte{1}, 70<<10)) // over max_upload
	ct2, form2 := formBody("file", "a.wav", "", wav, "response_format", "srt", "model", "whisper-1")
	f.Add("/v1/audio/transcriptions", ct2, "", form2)
	f.Add("/v1/audio/transcriptions", ct2, "", []byte{})
	// No model: every upload is read and parsed, then answered 503.
	cfg := asr.DefaultConfig()
	cfg.MaxUpload = 64 << 10
	url, client := startSpeechRoutes(f, asr.New(cfg, noModels{}, slog.New(slog.NewTextHandler(io.Discard, nil))))
	f.Fuzz(func(t *testing.T, path, contentType, query string, body []byte) {
		if path != "/v1/asr" {
			path = "/v1/audio/transcriptions"
		}
		req, err := http.NewRequest("POST", url+path+"?"+query, bytes.NewReader(body))
		if err != nil {
			return // not a URL a client could send
		}
		for _, b := range []byte(contentType) {
			if b < ' ' && b != '\t' || b == 0x7f {
				return // not a header value a client could send
			}
		}
		req.Header.Set("Content-Type", contentType)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %q %q: %v", path, contentType, query, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case 400, 413, 415:
		case 503:
			if !strings.Contains(string(b), CodeASRModelMissing) {
				t.Errorf("%s %q %q: 503 %s", path, contentType, query, b)
			}
		default:
			t.Errorf("%s %q %q: %d %s", path, contentType, query, resp.StatusCode, b)
		}
		resp, err = client.Get(url + "/healthz")
		if err != nil {
			t.Fatalf("the next request on the connection: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("the next request on the connection: %d", resp.StatusCode)
		}
	})
}

// BenchmarkSpeechUpload: POST /v1/asr of a 3.2 s clip with the contract
// SenseVoice model (its compute is tiny: this measures the route: upload,
// spool, decode, VAD, features, JSON), in audio seconds per second.
func BenchmarkSpeechUpload(b *testing.B) {
	speech, _ := filepath.Abs(speechData)
	wav, err := os.ReadFile(filepath.Join(speech, "espeak_cmn_02.wav"))
	if err != nil {
		b.Skipf("needs the speech clips in %s", speech)
	}
	modelDirs, _ := filepath.Abs("../../third_party/models")
	if _, err := os.Stat(filepath.Join(modelDirs, "silero-vad", "model.yaml")); err != nil || os.Getenv("ZHIYIN_ORT_LIB") == "" {
		b.Skip("needs ONNX Runtime and the Silero VAD folder: run scripts/fetch-deps.sh")
	}
	dir := b.TempDir()
	cfgPath := filepath.Join(dir, "zhiyin.yaml")
	if err := os.WriteFile(cfgPath, []byte("data_dir: "+dir+"\ninference:\n  model_dirs: ["+modelDirs+"]\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	sv, _ := filepath.Abs(senseVoiceFolder)
	if out, err := execZhiyin("models", "install", sv, "--config", cfgPath).CombinedOutput(); err != nil {
		b.Fatalf("models install: %v\n%s", err, out)
	}
	lc, err := loadConfig(cfgPath)
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg, closeASR, err := openASR(lc, log)
	if err != nil {
		b.Fatal(err)
	}
	defer closeASR()
	e := asr.New(lc.ASR, reg, log)
	if _, _, err := e.Warm(context.Background()); err != nil {
		b.Fatal(err)
	}
	url, client := startSpeechRoutes(b, e)
	ct, form := formBody("voice", "v.wav", "audio/wav", wav)
	for _, c := range []struct {
		name, ct string
		body     []byte
	}{{"multipart", ct, form}, {"raw", "audio/wav", wav}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.body)))
			for range b.N {
				resp, err := client.Post(url+"/v1/asr", c.ct, bytes.NewReader(c.body))
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
			b.ReportMetric(3.177*float64(b.N)/b.Elapsed().Seconds(), "audio-s/s")
		})
	}
}
