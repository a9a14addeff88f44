package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/zhiyin/zhiyin/asr/audio"
	"github.com/zhiyin/zhiyin/asr/features"
)

// The contract SenseVoice model is deterministic pseudo-random: this is
// its exact text for espeak_cmn_02.wav.
const espeak02Text = "页显页名些办卡签问式餐余页建"

const (
	senseVoiceFolder = "../../models/testdata/asr/sherpa-onnx-sense-voice-zh-en-ja-ko-yue-2024-07-17"
	paraformerFolder = "../../models/testdata/asr/sherpa-onnx-paraformer-zh-2024-03-09"
	speechData       = "../../../shared/data/speech"
	frontendData     = "../../../shared/data/frontend"
)

// asrPrereqs skips unless the speech clips, the contract models, the
// Silero VAD folder and ONNX Runtime are here; it returns the absolute
// paths of the clips folder and of third_party/models.
func asrPrereqs(t *testing.T) (speech, modelDirs string) {
	t.Helper()
	speech, _ = filepath.Abs(speechData)
	if _, err := os.Stat(filepath.Join(speech, "espeak_cmn_02.wav")); err != nil {
		t.Skipf("needs the speech clips in %s (the shared test data)", speech)
	}
	modelDirs, _ = filepath.Abs("../../third_party/models")
	if _, err := os.Stat(filepath.Join(modelDirs, "silero-vad", "model.yaml")); err != nil {
		t.Skip("needs the Silero VAD model folder: run scripts/fetch-deps.sh")
	}
	if _, err := os.Stat(filepath.Join(senseVoiceFolder, "model.onnx")); err != nil {
		t.Skip("needs the ASR contract models in models/testdata/asr: run scripts/gen-test-models")
	}
	if lib := os.Getenv("ZHIYIN_ORT_LIB"); lib == "" {
		t.Skip("needs ONNX Runtime: run scripts/fetch-deps.sh")
	} else if _, err := os.Stat(lib); err != nil {
		t.Skipf("needs ONNX Runtime at %s: run scripts/fetch-deps.sh", lib)
	}
	return speech, modelDirs
}

func readClip(t *testing.T, speech, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(speech, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// clipSamples decodes a WAV clip.
func clipSamples(t *testing.T, wav []byte) ([]float32, int) {
	t.Helper()
	r, err := audio.NewReader(bytes.NewReader(wav), "audio/wav", 0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := audio.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return s, r.Format().SampleRate
}

// pcm16 is samples as 16-bit little-endian PCM.
func pcm16(s []float32) []byte {
	b := make([]byte, 2*len(s))
	for i, v := range s {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(int16(max(-32768, min(32767, math.Round(float64(v)*32768))))))
	}
	return b
}

// asrConfigFile writes a configuration for a daemon on addr.
func asrConfigFile(t *testing.T, dir, addr, modelDirs string, loopback bool, extra string) string {
	t.Helper()
	cfg := filepath.Join(dir, "zhiyin.yaml")
	writeFile(t, cfg, fmt.Sprintf("data_dir: %s\nserver:\n  listen: %s\nauth:\n  allow_loopback: %v\ninference:\n  model_dirs: [%s]\n%s",
		filepath.Join(dir, "var"), addr, loopback, modelDirs, extra))
	return cfg
}

func installModel(t *testing.T, cfg, folder string) {
	t.Helper()
	abs, _ := filepath.Abs(folder)
	if code, out, errOut := runCLI(t, nil, "models", "install", abs, "--config", cfg); code != 0 {
		t.Fatalf("models install %s: exit %d\n%s%s", folder, code, out, errOut)
	}
}

// formBody is a multipart form: the file part first, then the fields.
func formBody(fileField, fileName, fileType string, data []byte, fields ...string) (string, []byte) {
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	if fileField != "" {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, fileField, fileName))
		if fileType != "" {
			h.Set("Content-Type", fileType)
		}
		p, _ := w.CreatePart(h)
		p.Write(data)
	}
	for i := 0; i+1 < len(fields); i += 2 {
		w.WriteField(fields[i], fields[i+1])
	}
	w.Close()
	return w.FormDataContentType(), b.Bytes()
}

// send POSTs body and returns the status, content type and body.
func send(t *testing.T, url, key, contentType string, body []byte) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

// asrResult is POST /v1/asr's answer.
type asrResult struct {
	Text     string `json:"text"`
	Segments []struct {
		Start, End          float64
		Text, Lang, Emotion string
		Event               string
		Tokens              []struct {
			Text       string
			Start, End float64
		}
	} `json:"segments"`
	Duration float64 `json:"duration"`
	RTF      float64 `json:"rtf"`
	Model    string  `json:"model"`
}

func decodeASR(t *testing.T, what string, code int, body string) asrResult {
	t.Helper()
	var r asrResult
	if code != 200 {
		t.Fatalf("%s: %d %s", what, code, body)
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("%s: %v: %s", what, err, body)
	}
	return r
}

func errorCode(body string) string {
	var e struct {
		Error struct{ Code, Message string }
	}
	json.Unmarshal([]byte(body), &e)
	return e.Error.Code
}

// TestASREndToEnd: the daemon starts without a speech model (503
// asr_model_missing, ready with an asr item saying so), a model installed
// while it runs is used by the next request, then every upload shape and
// refusal of POST /v1/asr, the OpenAI route's formats and the FunASR
// websocket's three modes against the real daemon.
func TestASREndToEnd(t *testing.T) {
	speech, modelDirs := asrPrereqs(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := asrConfigFile(t, dir, addr, modelDirs, true, "")
	d := startDaemon(t, addr, nil, "serve", "--config", cfg)
	ready := waitReady(t, d.url)
	if !strings.Contains(ready, `"name":"asr"`) || !strings.Contains(ready, "no speech model installed") {
		t.Errorf("/readyz lacks an asr item saying no model is installed: %s", ready)
	}
	wav := readClip(t, speech, "espeak_cmn_02.wav")
	ct, form := formBody("voice", "voice.wav", "audio/wav", wav)
	code, _, body := send(t, d.url+"/v1/asr", "", ct, form)
	if code != 503 || errorCode(body) != CodeASRModelMissing || !strings.Contains(body, "zhiyin models install") {
		t.Fatalf("no model: %d %s", code, body)
	}
	ct2, form2 := formBody("file", "a.wav", "", wav, "model", "whisper-1")
	if code, _, body := send(t, d.url+"/v1/audio/transcriptions", "", ct2, form2); code != 503 || errorCode(body) != CodeASRModelMissing {
		t.Errorf("OpenAI route, no model: %d %s", code, body)
	}
	// The websocket refuses the stream with "try again later".
	if c, _, err := dialASR(d.url + "/v1/asr/stream"); err != nil {
		t.Errorf("websocket without a model: %v", err)
	} else {
		c.WriteJSON(map[string]any{"mode": "offline", "wav_name": "w", "is_speaking": true})
		msg, cerr := readUntilClose(t, c)
		if len(msg) != 1 || !strings.Contains(fmt.Sprint(msg[0]["error"]), "zhiyin models install") || closeCode(cerr) != 1013 {
			t.Errorf("websocket without a model: %v then %v", msg, cerr)
		}
		c.Close()
	}

	// Installed while serving: the next request finds it, no restart.
	installModel(t, cfg, senseVoiceFolder)
	code, _, body = send(t, d.url+"/v1/asr", "", ct, form)
	ref := decodeASR(t, "after install", code, body)
	if ref.Text != espeak02Text || ref.Model != "sense-voice-small" || len(ref.Segments) != 1 || math.Abs(ref.Duration-3.177) > 0.001 {
		t.Fatalf("after install: %s", body)
	}
	if s := ref.Segments[0]; s.Lang != "zh" || s.Text != espeak02Text || s.End <= s.Start || len(s.Tokens) != 0 {
		t.Errorf("segment %+v (tokens only with timestamps=true)", s)
	}
	if ready := waitReady(t, d.url); !strings.Contains(ready, `"detail":"sense-voice-small 2024-07-17"`) {
		t.Errorf("/readyz does not show the model now in use: %s", ready)
	}

	t.Run("uploads", func(t *testing.T) { testASRUploads(t, d.url, speech, wav) })
	t.Run("openai", func(t *testing.T) { testOpenAIRoute(t, d.url, wav) })
	t.Run("websocket", func(t *testing.T) { testASRWebsocket(t, d.url, speech) })

	d.signal(t, syscall.SIGTERM)
	if code := d.wait(t); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}
}

func testASRUploads(t *testing.T, url, speech string, wav []byte) {
	samples, rate := clipSamples(t, wav)
	if rate != 16000 {
		t.Fatalf("clip rate %d", rate)
	}
	raw := pcm16(samples)
	s8, err := audio.Resample(samples, 16000, 8000)
	if err != nil {
		t.Fatal(err)
	}
	ulaw := make([]byte, len(s8))
	audio.EncodeMuLaw(ulaw, s8)
	alaw := make([]byte, len(s8))
	audio.EncodeALaw(alaw, s8)
	// 2 MiB of speech: over server.body_limit (1 MiB by default), which
	// does not hold on the speech routes.
	var long []float32
	for len(long)*2 < 2<<20 {
		long = append(long, samples...)
		long = append(long, make([]float32, 8000)...)
	}
	longWAV := audio.EncodeWAV(long, 16000)
	silence := readClip(t, speech, "noise_silence_3s.wav")
	mp3 := append([]byte("ID3\x03\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x00"), bytes.Repeat([]byte{0x55}, 400)...)
	voice := func(name, typ string, data []byte, fields ...string) func() (string, []byte) {
		return func() (string, []byte) { return formBody("voice", name, typ, data, fields...) }
	}
	rawBody := func(typ string, data []byte) func() (string, []byte) {
		return func() (string, []byte) { return typ, data }
	}
	t.Run("keep-alive after an early answer", func(t *testing.T) { testKeepAlive(t, url, raw, wav) })
	for _, c := range []struct {
		name  string
		query string
		body  func() (string, []byte)
		code  int
		check func(t *testing.T, r asrResult, body string) // for 200
		want  string                                       // in an error's body
	}{
		{name: "multipart voice (the load test's shape)", body: voice("voice.wav", "audio/wav", wav), code: 200, check: sameText(espeak02Text)},
		{name: "multipart file, octet-stream sniffed", body: func() (string, []byte) { return formBody("file", "x.bin", "application/octet-stream", wav) }, code: 200, check: sameText(espeak02Text)},
		{name: "multipart audio field, fields after the file", body: func() (string, []byte) {
			return formBody("audio", "x.wav", "audio/x-wav", wav, "language", "zh", "itn", "false", "timestamps", "true")
		}, code: 200, check: func(t *testing.T, r asrResult, body string) {
			if r.Text != espeak02Text || len(r.Segments) != 1 || len(r.Segments[0].Tokens) != len([]rune(espeak02Text)) {
				t.Errorf("timestamps=true: %s", body)
			}
			for _, tk := range r.Segments[0].Tokens {
				if tk.End < tk.Start || tk.Start < r.Segments[0].Start || tk.End > r.Segments[0].End {
					t.Errorf("token %+v outside its segment", tk)
				}
			}
		}},
		{name: "raw audio/wav", body: rawBody("audio/wav", wav), code: 200, check: sameText(espeak02Text)},
		{name: "raw pcm with ?rate=", query: "?rate=16000", body: rawBody("audio/pcm", raw), code: 200, check: sameText(espeak02Text)},
		{name: "raw pcm;rate=16000", body: rawBody("audio/pcm;rate=16000", raw), code: 200, check: sameText(espeak02Text)},
		{name: "multipart .pcm file with a rate field", body: voice("x.pcm", "", raw, "rate", "16000"), code: 200, check: sameText(espeak02Text)},
		{name: "8 kHz µ-law (audio/PCMU)", body: rawBody("audio/PCMU", ulaw), code: 200, check: telephone},
		{name: "8 kHz A-law (audio/PCMA)", body: rawBody("audio/PCMA", alaw), code: 200, check: telephone},
		{name: "2 MiB WAV over server.body_limit", body: rawBody("audio/wav", longWAV), code: 200, check: func(t *testing.T, r asrResult, body string) {
			if want := float64(len(long)) / 16000; math.Abs(r.Duration-want) > 0.01 || len(r.Segments) < 10 || !strings.HasPrefix(r.Text, espeak02Text) {
				t.Errorf("2 MiB WAV: duration %.2f (want %.2f), %d segments, text %q", r.Duration, want, len(r.Segments), r.Text)
			}
		}},
		{name: "silence", body: voice("s.wav", "audio/wav", silence), code: 200, check: func(t *testing.T, r asrResult, body string) {
			if r.Text != "" || len(r.Segments) != 0 || r.Duration != 3 {
				t.Errorf("silence: %s", body)
			}
		}},
		{name: "WAV cut inside its data (the samples there)", body: rawBody("audio/wav", wav[:44+3200]), code: 200, check: func(t *testing.T, r asrResult, body string) {
			if r.Duration != 0.1 {
				t.Errorf("cut WAV: %s", body)
			}
		}},
		{name: "mp3 in a form", body: voice("a.mp3", "audio/mpeg", mp3), code: 415, want: "send WAV"},
		{name: "mp3 body", body: rawBody("audio/mpeg", mp3), code: 415, want: "send WAV"},
		{name: "text file in a form", body: voice("notes.txt", "text/plain", []byte("我的快递到哪了\n")), code: 415, want: "send WAV"},
		{name: "text body", body: rawBody("text/plain", []byte("hello")), code: 415, want: "send WAV"},
		{name: "no content type", body: rawBody("", wav), code: 415, want: "audio/wav"},
		{name: "pcm without a rate", body: rawBody("audio/pcm", raw), code: 415, want: "rate="},
		{name: "truncated WAV header", body: voice("t.wav", "audio/wav", wav[:30]), code: 400, want: "malformed"},
		{name: "empty WAV body", body: rawBody("audio/wav", nil), code: 400, want: "malformed"},
		{name: "empty file in a form", body: voice("e.wav", "", nil), code: 400, want: "empty"},
		{name: "form without audio", body: func() (string, []byte) { return formBody("", "", "", nil, "language", "zh") }, code: 400, want: `voice`},
		{name: "multipart without boundary", body: rawBody("multipart/form-data", []byte("x")), code: 400},
		{name: "broken multipart", body: func() (string, []byte) {
			ct, b := formBody("voice", "v.wav", "audio/wav", wav)
			return ct, b[:len(b)/2]
		}, code: 400, want: "multipart"},
		{name: "language fr", body: voice("v.wav", "audio/wav", wav, "language", "fr"), code: 400, want: "auto, zh, en, yue, ja, ko"},
		{name: "language fr in the query", query: "?language=fr", body: rawBody("audio/wav", wav), code: 400, want: "fr"},
		{name: "itn not a bool", body: voice("v.wav", "audio/wav", wav, "itn", "maybe"), code: 400, want: "itn"},
		{name: "bad rate", query: "?rate=12", body: rawBody("audio/pcm", raw), code: 400, want: "rate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ct, b := c.body()
			code, _, body := send(t, url+"/v1/asr"+c.query, "", ct, b)
			if code != c.code {
				t.Fatalf("%d %s, want %d", code, body, c.code)
			}
			if code == 200 {
				c.check(t, decodeASR(t, c.name, code, body), body)
				return
			}
			if !strings.Contains(body, c.want) || errorCode(body) == "" {
				t.Errorf("%s lacks %q", body, c.want)
			}
		})
	}
}

// testKeepAlive: an answer given before the body was read (the header
// says 415) leaves the connection usable, and the next request on it is
// read as a request, not as the rest of the audio.
func testKeepAlive(t *testing.T, url string, raw, wav []byte) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	for i, c := range []struct {
		ct   string
		body []byte
		code int
	}{
		{"audio/pcm", raw, 415}, // no rate: refused from the header
		{"audio/wav", wav, 200},
		{"audio/mpeg", raw, 415},
		{"audio/wav", wav, 200},
	} {
		reused := false
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }})
		req, _ := http.NewRequestWithContext(ctx, "POST", url+"/v1/asr", bytes.NewReader(c.body))
		req.Header.Set("Content-Type", c.ct)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.code || (c.code == 200 && !strings.Contains(string(b), espeak02Text)) {
			t.Errorf("request %d: %d %s, want %d", i, resp.StatusCode, b, c.code)
		}
		if i > 0 && !reused {
			t.Errorf("request %d opened a new connection", i)
		}
	}
}

func sameText(want string) func(*testing.T, asrResult, string) {
	return func(t *testing.T, r asrResult, body string) {
		t.Helper()
		if r.Text != want || r.Model != "sense-voice-small" || math.Abs(r.Duration-3.177) > 0.001 {
			t.Errorf("got %s, want text %q", body, want)
		}
	}
}

// telephone checks an 8 kHz G.711 version of the clip: the same length,
// speech found (the pseudo-random model's text differs with the band).
func telephone(t *testing.T, r asrResult, body string) {
	t.Helper()
	if math.Abs(r.Duration-3.177) > 0.01 || r.Text == "" || len(r.Segments) != 1 {
		t.Errorf("8 kHz G.711: %s", body)
	}
}

func testOpenAIRoute(t *testing.T, url string, wav []byte) {
	for _, c := range []struct {
		format string
		ctype  string
		want   string
	}{
		{"", "application/json", `{"text":"` + espeak02Text + `"}`},
		{"json", "application/json", `{"text":"` + espeak02Text + `"}`},
		{"text", "text/plain; charset=utf-8", espeak02Text + "\n"},
		{"srt", "text/plain; charset=utf-8", "1\n00:00:00,000 --> 00:00:02,948\n" + espeak02Text + "\n\n"},
		{"vtt", "text/plain; charset=utf-8", "WEBVTT\n\n00:00:00.000 --> 00:00:02.948\n" + espeak02Text + "\n\n"},
	} {
		fields := []string{"model", "whisper-1", "language", "zh"}
		if c.format != "" {
			fields = append(fields, "response_format", c.format)
		}
		ct, b := formBody("file", "speech.wav", "audio/wav", wav, fields...)
		code, typ, body := send(t, url+"/v1/audio/transcriptions", "", ct, b)
		if code != 200 || typ != c.ctype || body != c.want {
			t.Errorf("response_format %q: %d %s %q, want %s %q", c.format, code, typ, body, c.ctype, c.want)
		}
	}
	ct, b := formBody("file", "speech.wav", "audio/wav", wav, "model", "whisper-1", "response_format", "verbose_json")
	code, _, body := send(t, url+"/v1/audio/transcriptions", "", ct, b)
	var v struct {
		Task     string  `json:"task"`
		Language string  `json:"language"`
		Duration float64 `json:"duration"`
		Text     string  `json:"text"`
		Segments []struct {
			ID     int     `json:"id"`
			Start  float64 `json:"start"`
			End    float64 `json:"end"`
			Text   string  `json:"text"`
			Tokens []int   `json:"tokens"`
		} `json:"segments"`
	}
	if err := json.Unmarshal([]byte(body), &v); code != 200 || err != nil {
		t.Fatalf("verbose_json: %d %v %s", code, err, body)
	}
	if v.Task != "transcribe" || v.Language != "chinese" || v.Text != espeak02Text || math.Abs(v.Duration-3.177) > 0.001 ||
		len(v.Segments) != 1 || v.Segments[0].Text != espeak02Text || v.Segments[0].Tokens == nil {
		t.Errorf("verbose_json: %s", body)
	}
	for _, c := range []struct {
		name string
		ct   string
		body []byte
		code int
		want string
	}{
		{"bad response_format", "", nil, 400, "json, text, verbose_json, srt or vtt"},
		{"missing file", "", nil, 400, `put the file in`},
		{"language fr", "", nil, 400, "auto, zh"},
		{"raw body", "audio/wav", wav, 200, espeak02Text},
	} {
		ct, b := c.ct, c.body
		switch c.name {
		case "bad response_format":
			ct, b = formBody("file", "a.wav", "audio/wav", wav, "model", "whisper-1", "response_format", "xml")
		case "missing file":
			ct, b = formBody("", "", "", nil, "model", "whisper-1")
		case "language fr":
			ct, b = formBody("file", "a.wav", "audio/wav", wav, "model", "whisper-1", "language", "fr")
		}
		if code, _, body := send(t, url+"/v1/audio/transcriptions", "", ct, b); code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %s, want %d with %q", c.name, code, body, c.code, c.want)
		}
	}
}

// dialASR opens the FunASR websocket (subprotocol binary).
func dialASR(httpURL string) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{Subprotocols: []string{"binary"}, HandshakeTimeout: 10 * time.Second}
	return d.Dial("ws"+strings.TrimPrefix(httpURL, "http"), nil)
}

// readUntilClose reads JSON messages until the socket closes.
func readUntilClose(t *testing.T, c *websocket.Conn) ([]map[string]any, error) {
	t.Helper()
	var msgs []map[string]any
	for {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		var m map[string]any
		if err := c.ReadJSON(&m); err != nil {
			return msgs, err
		}
		msgs = append(msgs, m)
	}
}

func closeCode(err error) int {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return -1
}

// utterance sends one utterance in 60 ms frames and reads the results up
// to the mode's last message.
func utterance(t *testing.T, c *websocket.Conn, mode, name string, pcm []byte) []map[string]any {
	t.Helper()
	if err := c.WriteJSON(map[string]any{"mode": mode, "wav_name": name, "is_speaking": true, "chunk_size": []int{5, 10, 5},
		"chunk_interval": 10, "audio_fs": 16000, "itn": true, "hotwords": ""}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		for i := 0; i < len(pcm); i += 1920 {
			if err := c.WriteMessage(websocket.BinaryMessage, pcm[i:min(i+1920, len(pcm))]); err != nil {
				done <- err
				return
			}
		}
		done <- c.WriteJSON(map[string]any{"is_speaking": false})
	}()
	var msgs []map[string]any
	for {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		var m map[string]any
		if err := c.ReadJSON(&m); err != nil {
			t.Fatalf("%s: after %v: %v", mode, msgs, err)
		}
		msgs = append(msgs, m)
		if m["error"] != nil {
			t.Fatalf("%s: error %v", mode, m)
		}
		if m["wav_name"] != name {
			t.Errorf("%s: wav_name %v, want %s", mode, m["wav_name"], name)
		}
		final, _ := m["is_final"].(bool)
		if mode == "offline" || final {
			break
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return msgs
}

func testASRWebsocket(t *testing.T, url, speech string) {
	// Two sentences with a pause: two segments.
	a, _ := clipSamples(t, readClip(t, speech, "espeak_cmn_02.wav"))
	b, _ := clipSamples(t, readClip(t, speech, "espeak_cmn_05.wav"))
	both := append(append(append([]float32(nil), a...), make([]float32, 16000)...), b...)
	code, _, body := send(t, url+"/v1/asr?timestamps=true", "", "audio/wav", audio.EncodeWAV(both, 16000))
	ref := decodeASR(t, "two sentences", code, body)
	if len(ref.Segments) != 2 {
		t.Fatalf("the two-sentence clip gives %d segments: %s", len(ref.Segments), body)
	}
	pcm := pcm16(both)

	c, resp, err := dialASR(url + "/v1/asr/stream")
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if p := resp.Header.Get("Sec-WebSocket-Protocol"); p != "binary" {
		t.Errorf("subprotocol %q, want binary", p)
	}

	t.Run("offline", func(t *testing.T) {
		msgs := utterance(t, c, "offline", "off1", pcm)
		m := msgs[0]
		if len(msgs) != 1 || m["mode"] != "offline" || m["text"] != ref.Text || m["is_final"] != false {
			t.Fatalf("offline: %v, want one message with %q", msgs, ref.Text)
		}
		var ts [][2]int64
		if err := json.Unmarshal([]byte(fmt.Sprint(m["timestamp"])), &ts); err != nil || len(ts) != len(ref.Segments[0].Tokens)+len(ref.Segments[1].Tokens) {
			t.Errorf("offline timestamp %v (%v)", m["timestamp"], err)
		}
	})
	t.Run("online", func(t *testing.T) {
		msgs := utterance(t, c, "online", "on1", pcm)
		var text strings.Builder
		for i, m := range msgs {
			last := i == len(msgs)-1
			if m["mode"] != "online" || m["is_final"] != last || (last && m["text"] != "") || (!last && m["text"] == "") {
				t.Errorf("online message %d: %v", i, m)
			}
			text.WriteString(fmt.Sprint(m["text"]))
		}
		if len(msgs) < 3 || text.String() != ref.Text {
			t.Errorf("online: %d messages adding up to %q, want %q: %v", len(msgs), text.String(), ref.Text, msgs)
		}
	})
	t.Run("2pass, twice on one connection", func(t *testing.T) {
		for round := range 2 {
			msgs := utterance(t, c, "2pass", fmt.Sprintf("two%d", round), pcm)
			var online, offline []string
			for i, m := range msgs {
				last := i == len(msgs)-1
				switch {
				case last:
					if m["mode"] != "2pass-offline" || m["text"] != "" || m["is_final"] != true {
						t.Errorf("last 2pass message %v", m)
					}
				case m["mode"] == "2pass-online" && m["is_final"] == false:
					online = append(online, fmt.Sprint(m["text"]))
				case m["mode"] == "2pass-offline" && m["is_final"] == false:
					offline = append(offline, fmt.Sprint(m["text"]))
					if m["timestamp"] == nil || m["end_time"].(float64) <= m["start_time"].(float64) {
						t.Errorf("2pass-offline without timestamps: %v", m)
					}
				default:
					t.Errorf("2pass message %d: %v", i, m)
				}
			}
			if len(online) == 0 || len(offline) != 2 || offline[0] != ref.Segments[0].Text || offline[1] != ref.Segments[1].Text ||
				strings.Join(offline, "") != ref.Text {
				t.Errorf("round %d: online %q, offline %q; want offline %q", round, online, offline, ref.Text)
			}
		}
	})

	for _, c := range []struct {
		name  string
		first func(c *websocket.Conn) error
		close int
		want  string
	}{
		{"binary before the configuration", func(c *websocket.Conn) error { return c.WriteMessage(websocket.BinaryMessage, pcm[:1920]) },
			websocket.ClosePolicyViolation, "JSON configuration message before audio"},
		{"bad mode", func(c *websocket.Conn) error {
			return c.WriteJSON(map[string]any{"mode": "realtime", "is_speaking": true})
		},
			websocket.ClosePolicyViolation, "offline, online or 2pass"},
		{"not JSON", func(c *websocket.Conn) error { return c.WriteMessage(websocket.TextMessage, []byte("{mode")) },
			websocket.CloseUnsupportedData, "invalid JSON"},
		{"mp3 on the stream", func(c *websocket.Conn) error {
			return c.WriteJSON(map[string]any{"mode": "offline", "wav_format": "mp3", "is_speaking": true})
		}, websocket.ClosePolicyViolation, "16-bit"},
		{"bad svs_lang", func(c *websocket.Conn) error {
			return c.WriteJSON(map[string]any{"mode": "offline", "svs_lang": "fr", "is_speaking": true})
		}, websocket.ClosePolicyViolation, "svs_lang"},
		{"bad audio_fs", func(c *websocket.Conn) error {
			return c.WriteJSON(map[string]any{"mode": "offline", "audio_fs": 4000, "is_speaking": true})
		}, websocket.ClosePolicyViolation, "8000 to 48000"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ws, _, err := dialASR(url + "/v1/asr/stream")
			if err != nil {
				t.Fatal(err)
			}
			defer ws.Close()
			if err := c.first(ws); err != nil {
				t.Fatal(err)
			}
			msgs, err := readUntilClose(t, ws)
			if len(msgs) != 1 || !strings.Contains(fmt.Sprint(msgs[0]["error"]), c.want) || closeCode(err) != c.close {
				t.Errorf("got %v then %v; want an error with %q and close %d", msgs, err, c.want, c.close)
			}
		})
	}
	// A plain GET is told to upgrade.
	if code, body := get(t, url+"/v1/asr/stream", ""); code != 426 || !strings.Contains(body, "websocket") {
		t.Errorf("GET without upgrade: %d %s", code, body)
	}
}

// TestASRLimitsAndAuth: with API keys required (loopback not trusted),
// small asr.max_duration, asr.max_upload and asr.max_streams: 401 without
// a key, the key as a bearer token or ?token= on the websocket, 413 for
// long audio and big uploads, close 1013 for a stream too many, and
// SIGTERM closing an open stream (going away) with a clean exit.
func TestASRLimitsAndAuth(t *testing.T) {
	speech, modelDirs := asrPrereqs(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := asrConfigFile(t, dir, addr, modelDirs, false, "asr:\n  max_duration: 3s\n  max_upload: 256KiB\n  max_streams: 1\n")
	installModel(t, cfg, paraformerFolder) // model: auto falls back to paraformer-zh
	code, key, errOut := runCLI(t, nil, "apikey", "create", "--name", "asr", "--role", "client", "--config", cfg)
	if code != 0 {
		t.Fatalf("apikey create: %d %s", code, errOut)
	}
	key = strings.TrimSpace(key)
	d := startDaemon(t, addr, nil, "serve", "--config", cfg)
	if ready := waitReady(t, d.url); !strings.Contains(ready, "paraformer-zh") {
		t.Errorf("/readyz does not name the loaded model: %s", ready)
	}
	wav := readClip(t, speech, "espeak_cmn_01.wav") // 2.08 s
	ct, form := formBody("voice", "v.wav", "audio/wav", wav)
	if code, _, body := send(t, d.url+"/v1/asr", "", ct, form); code != 401 {
		t.Errorf("without a key: %d %s", code, body)
	}
	code, _, body := send(t, d.url+"/v1/asr", key, ct, form)
	if r := decodeASR(t, "with a key", code, body); r.Model != "paraformer-zh" || r.Text == "" {
		t.Errorf("with a key: %s", body)
	}
	if code, _, body := send(t, d.url+"/v1/audio/transcriptions", "", ct, form); code != 401 {
		t.Errorf("OpenAI route without a key: %d %s", code, body)
	}

	long := readClip(t, speech, "espeak_cmn_02.wav") // 3.18 s
	s, _ := clipSamples(t, long)
	big := audio.EncodeWAV(append(s, make([]float32, 100000)...), 16000) // 10 s, 300 KiB
	streamed := append([]byte(nil), long...)
	binary.LittleEndian.PutUint32(streamed[40:], 0xFFFFFFFF) // data size unknown: found reading
	for _, c := range []struct {
		name, ct string
		body     []byte
		want     string
	}{
		{"long WAV", "audio/wav", long, "asr.max_duration"},
		{"long WAV, size unknown", "audio/wav", streamed, "asr.max_duration"},
		{"long raw PCM", "audio/pcm;rate=16000", pcm16(s), "asr.max_duration"},
		{"big body", "audio/wav", big, "asr.max_upload"},
		{"big form", "", nil, "asr.max_upload"},
	} {
		ct, b := c.ct, c.body
		if b == nil {
			ct, b = formBody("voice", "big.wav", "audio/wav", big)
		}
		if code, _, body := send(t, d.url+"/v1/asr", key, ct, b); code != 413 || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %s, want 413 naming %s", c.name, code, body, c.want)
		}
	}

	// The websocket takes the key as ?token=.
	if _, resp, err := dialASR(d.url + "/v1/asr/stream"); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Errorf("websocket without a key: %v %v", resp, err)
	}
	if _, resp, err := dialASR(d.url + "/v1/asr/stream?token=wrong"); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Errorf("websocket with a wrong token: %v %v", resp, err)
	}
	ws, _, err := dialASR(d.url + "/v1/asr/stream?token=" + key)
	if err != nil {
		t.Fatalf("websocket with ?token=: %v", err)
	}
	defer ws.Close()
	// The first stream is open once its first partial arrives: 2.9 s (under
	// asr.max_duration, 3 s), so that a loaded machine (partials are
	// skipped while one is being recognised) still gets two that agree.
	pcm := pcm16(s[:46400])
	if err := ws.WriteJSON(map[string]any{"mode": "online", "wav_name": "held", "is_speaking": true}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(pcm); i += 1920 {
		ws.WriteMessage(websocket.BinaryMessage, pcm[i:min(i+1920, len(pcm))])
	}
	ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	var first map[string]any
	if err := ws.ReadJSON(&first); err != nil || first["mode"] != "online" || first["text"] == "" {
		t.Fatalf("first partial: %v %v", first, err)
	}
	// asr.max_streams is 1: a second stream is told to come back later.
	ws2, _, err := dialASR(d.url + "/v1/asr/stream?token=" + key)
	if err != nil {
		t.Fatal(err)
	}
	ws2.WriteJSON(map[string]any{"mode": "2pass", "is_speaking": true})
	msgs, err := readUntilClose(t, ws2)
	ws2.Close()
	if len(msgs) != 1 || !strings.Contains(fmt.Sprint(msgs[0]["error"]), "busy") && !strings.Contains(fmt.Sprint(msgs[0]["error"]), "max_streams") || closeCode(err) != 1013 {
		t.Errorf("a stream too many: %v then %v, want an error and close 1013", msgs, err)
	}
	// SIGTERM with the stream open: it is closed (going away) and the
	// daemon exits cleanly.
	d.signal(t, syscall.SIGTERM)
	_, err = readUntilClose(t, ws)
	if closeCode(err) != websocket.CloseGoingAway {
		t.Errorf("open stream at SIGTERM: %v, want close 1001", err)
	}
	if code := d.wait(t); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}
}

// TestASRCommands: zhiyin transcribe (one file, several, --json, a
// missing file, no model), zhiyin asr features against the reference
// features, zhiyin asr vad, and the help listing them.
func TestASRCommands(t *testing.T) {
	speech, modelDirs := asrPrereqs(t)
	dir := t.TempDir()
	cfg := asrConfigFile(t, dir, freeAddr(t), modelDirs, true, "")
	clip := filepath.Join(speech, "espeak_cmn_02.wav")
	silence := filepath.Join(speech, "noise_silence_3s.wav")

	// No model yet: an error that says how to install one.
	code, out, errOut := runCLI(t, nil, "transcribe", "--config", cfg, clip)
	if code != 1 || out != "" || !strings.Contains(errOut, "zhiyin models install") {
		t.Errorf("no model: exit %d\n%s%s", code, out, errOut)
	}
	installModel(t, cfg, senseVoiceFolder)

	code, out, errOut = runCLI(t, nil, "transcribe", "--config", cfg, clip)
	if code != 0 || out != espeak02Text+"\n" {
		t.Errorf("one file: exit %d %q %s", code, out, errOut)
	}
	if strings.Contains(errOut, "\r") {
		t.Errorf("a progress bar on a pipe: %q", errOut)
	}
	code, out, errOut = runCLI(t, nil, "transcribe", "--config", cfg, clip, silence)
	if code != 0 || out != clip+"\t"+espeak02Text+"\n"+silence+"\t\n" {
		t.Errorf("two files: exit %d %q %s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, nil, "transcribe", "--config", cfg, "--json", "--language", "zh", "--itn", "false", "--progress", "always", clip)
	var j struct {
		File string `json:"file"`
		asrResult
	}
	if err := json.Unmarshal([]byte(out), &j); code != 0 || err != nil || j.File != clip || j.Text != espeak02Text || len(j.Segments) != 1 ||
		j.Segments[0].Lang != "zh" || math.Abs(j.Duration-3.177) > 0.001 {
		t.Errorf("--json: exit %d %v %q %s", code, err, out, errOut)
	}
	if !strings.Contains(errOut, "espeak_cmn_02.wav") || !strings.Contains(errOut, "100%") {
		t.Errorf("--progress always drew no bar: %q", errOut)
	}
	// A missing file fails alone: the others are still done, exit 1.
	missing := filepath.Join(dir, "nope.wav")
	code, out, errOut = runCLI(t, nil, "transcribe", "--config", cfg, missing, clip)
	if code != 1 || out != clip+"\t"+espeak02Text+"\n" || !strings.Contains(errOut, "nope.wav") || !strings.Contains(errOut, "1 of 2 files failed") {
		t.Errorf("missing file: exit %d %q %s", code, out, errOut)
	}
	// Standard input and raw PCM.
	wav := readClip(t, speech, "espeak_cmn_02.wav")
	cmd := runCLIStdin(t, wav, "transcribe", "--config", cfg, "-")
	if cmd != espeak02Text+"\n" {
		t.Errorf("stdin: %q", cmd)
	}
	pcmPath := filepath.Join(dir, "clip.pcm")
	writeFile(t, pcmPath, string(wav[44:]))
	if code, out, errOut := runCLI(t, nil, "transcribe", "--config", cfg, "--rate", "16000", pcmPath); code != 0 || out != espeak02Text+"\n" {
		t.Errorf("--rate: exit %d %q %s", code, out, errOut)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"transcribe", "--config", cfg}, "at least one audio file"},
		{[]string{"transcribe", "--config", cfg, "--language", "fr", clip}, "language"},
		{[]string{"transcribe", "--config", cfg, "--progress", "sometimes", clip}, "--progress"},
		{[]string{"transcribe", "--config", cfg, "--model", "no-such-model", clip}, "no-such-model"},
		{[]string{"asr"}, "features or vad"},
		{[]string{"asr", "spectrogram"}, "features or vad"},
		{[]string{"asr", "features", "--stage", "cmvn", clip, filepath.Join(dir, "x.bin")}, "--cmvn"},
		{[]string{"asr", "features", "--stage", "mfcc", clip, filepath.Join(dir, "x.bin")}, "fbank, lfr or cmvn"},
		{[]string{"asr", "vad", "--config", cfg}, "one audio file"},
	} {
		if code, out, errOut := runCLI(t, nil, c.args...); code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d %q %s, want an error with %q", c.args, code, out, errOut, c.want)
		}
	}

	// Features equal the torchaudio/FunASR references.
	frontend, _ := filepath.Abs(frontendData)
	if _, err := os.Stat(filepath.Join(frontend, "espeak_cmn_02.fbank.bin")); err != nil {
		t.Skipf("needs the reference features in %s", frontend)
	}
	for _, c := range []struct {
		stage, ref string
		dim, rows  int
		extra      []string
	}{
		{"fbank", "espeak_cmn_02.fbank.bin", 80, 316, nil},
		{"lfr", "espeak_cmn_02.lfr.bin", 560, 53, nil},
		{"cmvn", "espeak_cmn_02.lfr_cmvn.bin", 560, 53, []string{"--cmvn", filepath.Join(frontend, "am.mvn")}},
	} {
		outPath := filepath.Join(dir, c.stage+".bin")
		args := append(append([]string{"asr", "features", "--stage", c.stage}, c.extra...), clip, outPath)
		code, out, errOut := runCLI(t, nil, args...)
		if code != 0 || !strings.Contains(errOut, fmt.Sprintf("%d×%d", c.rows, c.dim)) {
			t.Errorf("features %s: exit %d %s%s", c.stage, code, out, errOut)
			continue
		}
		got, want := readMatrix(t, outPath), readMatrix(t, filepath.Join(frontend, c.ref))
		if len(got) != len(want) || len(got) != c.rows*c.dim {
			t.Errorf("features %s: %d values, reference %d", c.stage, len(got), len(want))
			continue
		}
		worst := 0.0
		for i := range got {
			worst = max(worst, math.Abs(float64(got[i]-want[i])))
		}
		if worst > 1e-3 {
			t.Errorf("features %s: differ from the reference by up to %g", c.stage, worst)
		}
	}

	// VAD: speech has segments, white noise none.
	code, out, errOut = runCLI(t, nil, "asr", "vad", "--config", cfg, "--json", clip)
	var segs []struct{ Start, End float64 }
	if err := json.Unmarshal([]byte(out), &segs); code != 0 || err != nil || len(segs) < 1 || segs[0].End <= segs[0].Start || segs[len(segs)-1].End > 3.2 {
		t.Errorf("vad on speech: exit %d %v %q %s", code, err, out, errOut)
	}
	code, out, errOut = runCLI(t, nil, "asr", "vad", "--config", cfg, "--json", filepath.Join(speech, "noise_white_3s.wav"))
	if code != 0 || out != "[]\n" {
		t.Errorf("vad on white noise: exit %d %q %s", code, out, errOut)
	}
	if code, out, _ := runCLI(t, nil, "asr", "vad", "--config", cfg, clip); code != 0 || len(strings.Fields(out)) != 2*len(segs) {
		t.Errorf("vad plain: exit %d %q", code, out)
	}

	_, out, errOut = runCLI(t, nil, "--help")
	for _, cmd := range []string{"\n  transcribe ", "\n  asr "} {
		if !strings.Contains(out+errOut, cmd) {
			t.Errorf("--help lacks %q:\n%s%s", cmd, out, errOut)
		}
	}
}

// runCLIStdin runs the binary with stdin and returns its standard output
// (failing the test on a non-zero exit).
func runCLIStdin(t *testing.T, stdin []byte, args ...string) string {
	t.Helper()
	cmd := execZhiyin(args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("zhiyin %v: %v\n%s", args, err, errb.String())
	}
	return out.String()
}

func readMatrix(t *testing.T, path string) []float32 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := features.ReadMatrix(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

func execZhiyin(args ...string) *exec.Cmd {
	cmd := exec.Command(zhiyinBin, args...)
	cmd.Env = os.Environ()
	return cmd
}
