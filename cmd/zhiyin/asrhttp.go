package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/zhiyin/zhiyin/asr"
	"github.com/zhiyin/zhiyin/asr/audio"
	"github.com/zhiyin/zhiyin/inference"
	"github.com/zhiyin/zhiyin/internal/httpserver"
)

// asrSource returns the speech engine, or nil while the daemon starts.
type asrSource func() *asr.Engine

// CodeASRModelMissing is the error code of speech requests made while no
// recognition model is installed.
const CodeASRModelMissing = "asr_model_missing"

// asrPaths are the speech routes that take uploads as streams.
var asrPaths = []string{"/v1/asr", "/v1/audio/transcriptions"}

// maxUploadCeiling is the largest asr.max_upload the configuration accepts.
const maxUploadCeiling = 16 << 30

// drainLimit is how much of an unread request body is read and dropped
// after an answer so that the connection can serve the next request;
// with more left the connection is closed instead.
const drainLimit = 1 << 20

// finishBody runs the rest of the chain, then reads what it left of the
// request body. fasthttp hands streamed bodies to the handler after their
// first 8 KiB whatever server.body_limit says, and does not skip the rest:
// an answer given early (415 from the header, 503 with no model, 401)
// would leave audio bytes on a kept-alive connection, read as the next
// request.
func finishBody(c *fiber.Ctx) error {
	err := c.Next()
	req := c.Request()
	if !req.IsBodyStream() || c.Method() == fiber.MethodGet || c.Method() == fiber.MethodHead {
		return err
	}
	n, derr := io.CopyN(io.Discard, req.BodyStream(), drainLimit+1)
	if derr != io.EOF || n > drainLimit {
		c.Context().SetConnectionClose()
	}
	return err
}

// errASRNotReady answers speech requests while the daemon starts.
var errASRNotReady = httpserver.Errorf(503, httpserver.CodeUnavailable, "the speech engine is still starting; retry when /readyz says ready")

// asrError maps the speech path's errors to answers (nil: not one of them).
func asrError(err error) *httpserver.Error {
	switch {
	case errors.Is(err, asr.ErrNoModel):
		return &httpserver.Error{Status: 503, Code: CodeASRModelMissing, Message: err.Error()}
	case errors.Is(err, asr.ErrTooLong):
		return &httpserver.Error{Status: 413, Code: httpserver.CodePayloadTooLarge, Message: err.Error()}
	case errors.Is(err, audio.ErrUnsupported):
		return &httpserver.Error{Status: 415, Code: httpserver.CodeUnsupportedMedia, Message: err.Error()}
	case errors.Is(err, audio.ErrMalformed):
		return &httpserver.Error{Status: 400, Code: httpserver.CodeBadRequest, Message: err.Error()}
	case errors.Is(err, asr.ErrBusy), errors.Is(err, inference.ErrOverloaded):
		return &httpserver.Error{Status: 503, Code: httpserver.CodeUnavailable, Message: "speech recognition is busy; retry shortly", RetryAfter: time.Second}
	case errors.Is(err, asr.ErrModelFiles), errors.Is(err, inference.ErrContract), errors.Is(err, inference.ErrChecksum), errors.Is(err, inference.ErrMissingFile):
		return &httpserver.Error{Status: 503, Code: httpserver.CodeUnavailable, Message: "the speech model cannot be used: " + err.Error() + " (the operator should run `zhiyin doctor`)", Err: err}
	}
	return nil
}

// mountASR adds POST /v1/asr, POST /v1/audio/transcriptions (OpenAI's
// API) and the FunASR websocket GET /v1/asr/stream.
func mountASR(srv *httpserver.Server, src asrSource, streams *asrStreams) {
	// The engine (and its asr.max_upload) exists only once the daemon has
	// started: the routes take bodies up to the largest max_upload allowed
	// and readUpload holds each to the configured one.
	for _, p := range asrPaths {
		srv.AllowLargeBodies(p, maxUploadCeiling)
		// Registered before the authenticated groups, so it also runs
		// after a refusal (401, 429) that left the body unread.
		srv.Group(p, httpserver.Public).Use(finishBody)
	}
	// FunASR's clients cannot set headers on a websocket: they may pass
	// the key as ?token=.
	srv.Group("/v1/asr/stream", httpserver.Public).Use(func(c *fiber.Ctx) error {
		if t := c.Query("token"); t != "" && c.Get(httpserver.HeaderAPIKey) == "" && c.Get(fiber.HeaderAuthorization) == "" {
			c.Request().Header.Set(httpserver.HeaderAPIKey, t)
		}
		return c.Next()
	})
	g := srv.Group("/v1/asr", httpserver.Authenticated)
	g.Post("", func(c *fiber.Ctx) error {
		e := src()
		if e == nil {
			return errASRNotReady
		}
		up, err := readUpload(c, e, []string{"voice", "file", "audio"})
		if err != nil {
			return err
		}
		defer up.close()
		o, err := asrOptions(up.field("language", c.Query("language")), up.field("itn", c.Query("itn")))
		if err != nil {
			return err
		}
		res, err := up.transcribe(c.UserContext(), e, o)
		if err != nil {
			return err
		}
		if b, _ := strconv.ParseBool(up.field("timestamps", c.Query("timestamps"))); !b {
			for i := range res.Segments {
				res.Segments[i].Tokens = nil
			}
		}
		return c.JSON(res)
	})
	g.Get("/stream", streams.handler(src))
	srv.Group("/v1/audio", httpserver.Authenticated).Post("/transcriptions", func(c *fiber.Ctx) error {
		e := src()
		if e == nil {
			return errASRNotReady
		}
		up, err := readUpload(c, e, []string{"file"})
		if err != nil {
			return err
		}
		defer up.close()
		format := up.field("response_format", "json")
		switch format {
		case "json", "text", "verbose_json", "srt", "vtt":
		default:
			return httpserver.Errorf(400, httpserver.CodeBadRequest, "response_format %q is not supported: use json, text, verbose_json, srt or vtt", format)
		}
		lang := up.field("language", "")
		if lang != "" && !asr.ValidLanguage(lang) {
			return httpserver.Errorf(400, httpserver.CodeBadRequest, "language %q is not supported: use one of %s (or leave it out)", lang, strings.Join(asr.Languages(), ", "))
		}
		o, _ := asrOptions(lang, "")
		res, err := up.transcribe(c.UserContext(), e, o)
		if err != nil {
			return err
		}
		return writeOpenAI(c, format, res)
	})
}

// asrOptions reads a request's language and itn.
func asrOptions(lang, itn string) (asr.Options, error) {
	var o asr.Options
	if !asr.ValidLanguage(lang) {
		return o, httpserver.Errorf(400, httpserver.CodeBadRequest, "language %q is not supported: use one of %s", lang, strings.Join(asr.Languages(), ", "))
	}
	o.Language = lang
	if itn != "" {
		b, err := strconv.ParseBool(itn)
		if err != nil {
			return o, httpserver.Errorf(400, httpserver.CodeBadRequest, "itn must be true or false, got %q", itn)
		}
		o.ITN = &b
	}
	return o, nil
}

// upload is a request's audio: a raw body streamed as it arrives, or a
// multipart file part spooled to a temporary file (the form's other
// fields may come after it).
type upload struct {
	body      io.Reader // raw body
	mediaType string
	rate      int
	file      *os.File // spooled multipart part
	fields    map[string]string
}

func (u *upload) field(name, def string) string {
	if v, ok := u.fields[name]; ok {
		return v
	}
	return def
}

func (u *upload) close() {
	if u.file != nil {
		u.file.Close()
		os.Remove(u.file.Name())
	}
}

func (u *upload) transcribe(ctx context.Context, e *asr.Engine, o asr.Options) (*asr.Result, error) {
	r := u.body
	if u.file != nil {
		if _, err := u.file.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		r = u.file
	}
	if u.mediaType == "" && u.rate > 0 {
		u.mediaType = "audio/pcm"
	}
	return e.TranscribeReader(ctx, r, u.mediaType, u.rate, o)
}

// maxFormField bounds a multipart form's text fields.
const maxFormField = 64 << 10

// readUpload reads the request's audio: a multipart form whose file is in
// one of fileFields, or a raw audio body (Content-Type audio/…, rate from
// the media type's rate parameter or ?rate=).
func readUpload(c *fiber.Ctx, e *asr.Engine, fileFields []string) (*upload, error) {
	limit := int64(e.Config().MaxUpload)
	if cl := c.Request().Header.ContentLength(); cl > 0 && int64(cl) > limit {
		return nil, uploadTooLarge(limit)
	}
	body := &uploadBody{r: httpserver.BodyReader(c, limit), limit: limit}
	ct := c.Get(fiber.HeaderContentType)
	mt, params, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil {
		return nil, httpserver.Errorf(415, httpserver.CodeUnsupportedMedia,
			"send the audio as multipart/form-data (field %s) or as the body with Content-Type audio/wav (or audio/pcm;rate=16000, audio/PCMU, audio/PCMA)", fileFields[0])
	}
	rate := 0
	if q := c.Query("rate"); q != "" {
		if rate, err = strconv.Atoi(q); err != nil || rate < 1000 || rate > 384000 {
			return nil, httpserver.Errorf(400, httpserver.CodeBadRequest, "rate must be a sample rate in Hz (1000 to 384000), got %q", q)
		}
	}
	if mt != "multipart/form-data" {
		return &upload{body: body, mediaType: ct, rate: rate}, nil
	}
	boundary := params["boundary"]
	if boundary == "" {
		return nil, httpserver.Errorf(400, httpserver.CodeBadRequest, "multipart/form-data without a boundary")
	}
	up := &upload{fields: map[string]string{}, rate: rate}
	mr := multipart.NewReader(body, boundary)
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			up.close()
			var he *httpserver.Error
			if errors.As(err, &he) {
				return nil, he
			}
			return nil, httpserver.Errorf(400, httpserver.CodeBadRequest, "malformed multipart form: %v", err)
		}
		name := p.FormName()
		isFile := false
		for _, f := range fileFields {
			isFile = isFile || name == f
		}
		if isFile && up.file == nil {
			if err := up.spool(p, limit); err != nil {
				up.close()
				return nil, err
			}
			continue
		}
		v, err := io.ReadAll(io.LimitReader(p, maxFormField+1))
		if err != nil {
			up.close()
			return nil, httpserver.Errorf(400, httpserver.CodeBadRequest, "malformed multipart form: %v", err)
		}
		if len(v) > maxFormField {
			up.close()
			return nil, httpserver.Errorf(413, httpserver.CodePayloadTooLarge, "form field %q is longer than %d bytes", name, maxFormField)
		}
		up.fields[name] = strings.TrimSpace(string(v))
	}
	if up.file == nil {
		return nil, httpserver.Errorf(400, httpserver.CodeBadRequest, "the form has no audio: put the file in the %q field", fileFields[0])
	}
	if r := up.fields["rate"]; r != "" && up.rate == 0 {
		if up.rate, err = strconv.Atoi(r); err != nil || up.rate < 1000 || up.rate > 384000 {
			up.close()
			return nil, httpserver.Errorf(400, httpserver.CodeBadRequest, "rate must be a sample rate in Hz (1000 to 384000), got %q", r)
		}
	}
	return up, nil
}

// uploadTooLarge is the answer to an upload over asr.max_upload.
func uploadTooLarge(limit int64) *httpserver.Error {
	return httpserver.Errorf(413, httpserver.CodePayloadTooLarge,
		"the upload is larger than asr.max_upload (%d bytes): send a shorter recording or ask the operator to raise the limit", limit)
}

// uploadBody is a request body held to asr.max_upload; past it, reads fail
// with an answer naming the setting.
type uploadBody struct {
	r     io.Reader // httpserver.BodyReader
	limit int64
}

func (b *uploadBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	var he *httpserver.Error
	if errors.As(err, &he) && he.Status == 413 {
		err = uploadTooLarge(b.limit)
	}
	return n, err
}

// spool copies a file part to a temporary file.
func (u *upload) spool(p *multipart.Part, limit int64) error {
	u.mediaType = p.Header.Get(fiber.HeaderContentType)
	if mt, _, _ := mime.ParseMediaType(u.mediaType); mt == "application/octet-stream" || mt == "" {
		u.mediaType = "" // sniff the content
		switch strings.ToLower(filepath.Ext(p.FileName())) {
		case ".pcm", ".raw", ".s16", ".s16le":
			u.mediaType = "audio/pcm"
		case ".ulaw", ".mulaw", ".pcmu", ".au":
			u.mediaType = "audio/PCMU"
		case ".alaw", ".pcma":
			u.mediaType = "audio/PCMA"
		}
	}
	f, err := os.CreateTemp("", "zhiyin-upload-*")
	if err != nil {
		return fmt.Errorf("spool upload: %w", err)
	}
	u.file = f
	if _, err := io.Copy(f, p); err != nil {
		var he *httpserver.Error
		if errors.As(err, &he) {
			return he
		}
		if strings.Contains(err.Error(), "multipart") || errors.Is(err, io.ErrUnexpectedEOF) {
			return httpserver.Errorf(400, httpserver.CodeBadRequest, "malformed multipart form: %v", err)
		}
		return fmt.Errorf("spool upload: %w", err)
	}
	return nil
}

// openAIVerbose is OpenAI's verbose_json transcription.
type openAIVerbose struct {
	Task     string          `json:"task"`
	Language string          `json:"language"`
	Duration float64         `json:"duration"`
	Text     string          `json:"text"`
	Segments []openAISegment `json:"segments"`
}

type openAISegment struct {
	ID               int     `json:"id"`
	Seek             int     `json:"seek"`
	Start            float64 `json:"start"`
	End              float64 `json:"end"`
	Text             string  `json:"text"`
	Tokens           []int   `json:"tokens"`
	Temperature      float64 `json:"temperature"`
	AvgLogprob       float64 `json:"avg_logprob"`
	CompressionRatio float64 `json:"compression_ratio"`
	NoSpeechProb     float64 `json:"no_speech_prob"`
}

// openAILanguages are the language names OpenAI's verbose_json uses.
var openAILanguages = map[string]string{"zh": "chinese", "en": "english", "yue": "cantonese", "ja": "japanese", "ko": "korean"}

func writeOpenAI(c *fiber.Ctx, format string, res *asr.Result) error {
	switch format {
	case "text":
		c.Set(fiber.HeaderContentType, "text/plain; charset=utf-8")
		return c.SendString(res.Text + "\n")
	case "srt", "vtt":
		c.Set(fiber.HeaderContentType, "text/plain; charset=utf-8")
		return c.SendString(subtitles(format, res.Segments))
	case "verbose_json":
		v := openAIVerbose{Task: "transcribe", Language: "chinese", Duration: res.Duration, Text: res.Text, Segments: []openAISegment{}}
		for i, s := range res.Segments {
			if n, ok := openAILanguages[s.Lang]; ok && i == 0 {
				v.Language = n
			}
			v.Segments = append(v.Segments, openAISegment{ID: i, Seek: int(s.Start * 100), Start: s.Start, End: s.End, Text: s.Text, Tokens: []int{}})
		}
		return c.JSON(v)
	default:
		return c.JSON(map[string]string{"text": res.Text})
	}
}

// subtitles writes segments as SubRip or WebVTT.
func subtitles(format string, segs []asr.Segment) string {
	var b strings.Builder
	sep := ","
	if format == "vtt" {
		b.WriteString("WEBVTT\n\n")
		sep = "."
	}
	stamp := func(s float64) string {
		ms := int64(s*1000 + 0.5)
		return fmt.Sprintf("%02d:%02d:%02d%s%03d", ms/3600000, ms/60000%60, ms/1000%60, sep, ms%1000)
	}
	for i, s := range segs {
		if format == "srt" {
			fmt.Fprintf(&b, "%d\n", i+1)
		}
		fmt.Fprintf(&b, "%s --> %s\n%s\n\n", stamp(s.Start), stamp(s.End), s.Text)
	}
	return b.String()
}

// jsonString marshals v (maps and strings only) for websocket messages.
func jsonString(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
