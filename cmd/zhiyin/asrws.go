package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/fasthttp/websocket"
	fiberws "github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"

	"github.com/zhiyin/zhiyin/asr"
	"github.com/zhiyin/zhiyin/internal/httpserver"
)

// The FunASR runtime websocket protocol (MODELS.md §4): one JSON text
// message configures a session, binary messages carry 16-bit little-endian
// mono PCM, {"is_speaking": false} ends the audio; results are JSON text
// messages with mode, wav_name, text and is_final. After the end a new
// JSON message starts the next utterance on the same connection.

const (
	wsMaxFrame   = 1 << 20          // a binary frame: 60 ms is 1920 bytes; allow long chunks
	wsMaxText    = 64 << 10         // a JSON message
	wsIdle       = 2 * time.Minute  // no message for this long closes the socket
	wsWriteWait  = 10 * time.Second //
	wsCloseAgain = 1013             // try again later
)

// asrStreams tracks the open speech websockets so that stopping the
// daemon closes them before the models go away.
type asrStreams struct {
	log *slog.Logger

	mu     sync.Mutex
	conns  map[*wsSession]struct{}
	closed bool
	wg     sync.WaitGroup
}

func newASRStreams(log *slog.Logger) *asrStreams {
	return &asrStreams{log: log, conns: map[*wsSession]struct{}{}}
}

// Close closes every open stream (going away) and waits for their
// handlers to return; later connections are refused.
func (s *asrStreams) Close(ctx context.Context) {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.abort(websocket.CloseGoingAway, "server stopping")
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

func (s *asrStreams) add(c *wsSession) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *asrStreams) remove(c *wsSession) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// handler is GET /v1/asr/stream.
func (s *asrStreams) handler(src asrSource) fiber.Handler {
	ws := fiberws.New(func(c *fiberws.Conn) {
		sess := &wsSession{ws: c.Conn, src: src, log: s.log}
		if raw, ok := c.Conn.NetConn().(interface{ UnsafeConn() net.Conn }); ok {
			sess.raw = raw.UnsafeConn()
		} else {
			sess.raw = c.Conn.NetConn()
		}
		if !s.add(sess) {
			sess.closeWith(websocket.CloseGoingAway, "server stopping")
			return
		}
		defer s.remove(sess)
		sess.serve()
	}, fiberws.Config{
		HandshakeTimeout: wsWriteWait,
		Subprotocols:     []string{"binary"},
		Origins:          []string{"*"},
		ReadBufferSize:   8192,
		WriteBufferSize:  4096,
		RecoverHandler: func(*fiberws.Conn) {
			if v := recover(); v != nil {
				s.log.Error("asr stream: handler panicked", attrErr, fmt.Sprint(v))
			}
		},
	})
	return func(c *fiber.Ctx) error {
		if !fiberws.IsWebSocketUpgrade(c) {
			return httpserver.Errorf(426, "upgrade_required", "this is a websocket endpoint (FunASR protocol): connect with ws://HOST/v1/asr/stream")
		}
		if src() == nil {
			return errASRNotReady
		}
		return ws(c)
	}
}

// funasrConfig is the first (and each later) JSON message.
type funasrConfig struct {
	Mode       *string         `json:"mode"`
	WavName    *string         `json:"wav_name"`
	WavFormat  *string         `json:"wav_format"`
	AudioFS    *int            `json:"audio_fs"`
	IsSpeaking *bool           `json:"is_speaking"`
	IsFinished *bool           `json:"is_finished"`
	ChunkSize  []int           `json:"chunk_size"`
	Hotwords   json.RawMessage `json:"hotwords"`
	ITN        *bool           `json:"itn"`
	SVSLang    *string         `json:"svs_lang"`
	SVSITN     *bool           `json:"svs_itn"`
}

// wsSession is one websocket: at most one utterance at a time.
type wsSession struct {
	ws  *websocket.Conn
	raw net.Conn
	src asrSource
	log *slog.Logger

	wmu     sync.Mutex // serialises writes (results come from the stream's goroutine)
	aborted bool

	// the utterance
	stream  *asr.Stream
	mode    string
	wavName string
	pcm     []float32
	sent    map[int]*onlineText // per segment (online deltas)
	finals  []asr.Segment
}

func (c *wsSession) serve() {
	c.ws.SetReadLimit(wsMaxFrame)
	defer func() {
		if c.stream != nil {
			c.stream.Close()
		}
		c.raw.Close()
	}()
	for {
		c.ws.SetReadDeadline(time.Now().Add(wsIdle))
		kind, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		switch kind {
		case websocket.TextMessage:
			if len(data) > wsMaxText {
				c.closeWith(websocket.CloseMessageTooBig, "JSON message too long")
				return
			}
			if !c.control(data) {
				return
			}
		case websocket.BinaryMessage:
			if !c.audio(data) {
				return
			}
		}
	}
}

// control handles a JSON message; false ends the connection.
func (c *wsSession) control(data []byte) bool {
	var m funasrConfig
	if err := json.Unmarshal(data, &m); err != nil {
		c.fail(websocket.CloseUnsupportedData, "invalid JSON message: "+err.Error())
		return false
	}
	if c.stream == nil && (m.Mode != nil || m.IsSpeaking == nil || *m.IsSpeaking) {
		if !c.start(&m) {
			return false
		}
	}
	if (m.IsSpeaking != nil && !*m.IsSpeaking) || (m.IsFinished != nil && *m.IsFinished) {
		return c.finish()
	}
	return true
}

// start opens a stream for a configuration message.
func (c *wsSession) start(m *funasrConfig) bool {
	e := c.src()
	if e == nil {
		c.fail(wsCloseAgain, errASRNotReady.Message)
		return false
	}
	c.mode = "2pass"
	if m.Mode != nil {
		c.mode = *m.Mode
	}
	switch c.mode {
	case "offline", "online", "2pass":
	default:
		c.fail(websocket.ClosePolicyViolation, fmt.Sprintf("mode %q is not supported: use offline, online or 2pass", c.mode))
		return false
	}
	if m.WavFormat != nil && *m.WavFormat != "" && !strings.EqualFold(*m.WavFormat, "pcm") {
		c.fail(websocket.ClosePolicyViolation, fmt.Sprintf("wav_format %q is not supported on the stream: send 16-bit little-endian PCM (or POST files to /v1/asr)", *m.WavFormat))
		return false
	}
	c.wavName = "default"
	if m.WavName != nil {
		c.wavName = *m.WavName
	}
	rate := 16000
	if m.AudioFS != nil {
		rate = *m.AudioFS
	}
	o := asr.StreamOptions{SampleRate: rate, Partials: c.mode != "offline"}
	if m.SVSLang != nil && *m.SVSLang != "" {
		if !asr.ValidLanguage(*m.SVSLang) {
			c.fail(websocket.ClosePolicyViolation, fmt.Sprintf("svs_lang %q is not supported: use one of %s", *m.SVSLang, strings.Join(asr.Languages(), ", ")))
			return false
		}
		o.Language = *m.SVSLang
	}
	if m.SVSITN != nil {
		o.ITN = m.SVSITN
	} else if m.ITN != nil {
		o.ITN = m.ITN
	}
	c.sent, c.finals = map[int]*onlineText{}, nil
	o.OnEvent = c.event
	s, err := e.NewStream(context.Background(), o)
	if err != nil {
		code := websocket.CloseInternalServerErr
		if ae := asrError(err); ae != nil && ae.Status == 503 {
			code = wsCloseAgain
		} else if ae != nil {
			code = websocket.ClosePolicyViolation
		}
		c.fail(code, err.Error())
		return false
	}
	c.stream = s
	return true
}

// audio handles a binary PCM frame.
func (c *wsSession) audio(data []byte) bool {
	if c.stream == nil {
		c.fail(websocket.ClosePolicyViolation, "send the JSON configuration message before audio")
		return false
	}
	n := len(data) / 2
	c.pcm = c.pcm[:0]
	for i := 0; i < n; i++ {
		c.pcm = append(c.pcm, float32(int16(binary.LittleEndian.Uint16(data[2*i:])))/32768)
	}
	if err := c.stream.Write(context.Background(), c.pcm); err != nil {
		c.streamFailed(err)
		return false
	}
	return true
}

// finish ends the utterance: the last results, then the final message.
func (c *wsSession) finish() bool {
	if c.stream == nil {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	err := c.stream.Finish(ctx)
	c.stream = nil
	if err != nil {
		c.streamFailed(err)
		return false
	}
	switch c.mode {
	case "offline":
		texts := make([]string, 0, len(c.finals))
		var toks []asr.Token
		for _, s := range c.finals {
			texts = append(texts, s.Text)
			toks = append(toks, s.Tokens...)
		}
		msg := map[string]any{"mode": "offline", "wav_name": c.wavName, "text": asr.JoinText(texts), "is_final": false}
		addTimestamps(msg, toks)
		return c.send(msg)
	case "online":
		return c.send(map[string]any{"mode": "online", "wav_name": c.wavName, "text": "", "is_final": true})
	default:
		return c.send(map[string]any{"mode": "2pass-offline", "wav_name": c.wavName, "text": "", "is_final": true})
	}
}

// event sends a stream result (on the stream's goroutine).
func (c *wsSession) event(ev asr.Event) {
	switch c.mode {
	case "offline":
		if ev.Kind == asr.Final {
			c.finals = append(c.finals, ev.Segment)
		}
	case "online", "2pass":
		online := "online"
		if c.mode == "2pass" {
			online = "2pass-online"
		}
		// 2pass corrects each segment with its offline message: the
		// online messages carry partials only.
		if ev.Kind == asr.Partial || c.mode == "online" {
			if d := c.delta(ev); d != "" {
				c.send(map[string]any{"mode": online, "wav_name": c.wavName, "text": d, "is_final": false})
			}
		}
		if ev.Kind == asr.Final && c.mode == "2pass" {
			msg := map[string]any{"mode": "2pass-offline", "wav_name": c.wavName, "text": ev.Segment.Text, "is_final": false,
				"start_time": int64(ev.Segment.Start * 1000), "end_time": int64(ev.Segment.End * 1000)}
			addTimestamps(msg, ev.Segment.Tokens)
			c.send(msg)
		}
	}
}

// onlineText is what a segment's online messages said.
type onlineText struct {
	sent    string // the text sent, in increments
	partial string // the last partial result
}

// delta returns the new text of a segment beyond what was sent. Online
// results are incremental (FunASR clients append them) and cannot be taken
// back, but a partial is a fresh recognition of the segment so far whose
// last words may change with the audio that follows. So a partial sends
// only what it agrees on with the previous partial (the local agreement of
// streaming decoders); the final result sends the rest. A final that
// revises text already sent (rare) continues after the sent text's length,
// so the client ends with the final's length and the sent words standing.
func (c *wsSession) delta(ev asr.Event) string {
	st := c.sent[ev.Index]
	if st == nil {
		st = &onlineText{}
		c.sent[ev.Index] = st
	}
	text := ev.Segment.Text
	if ev.Kind == asr.Partial {
		text, st.partial = commonPrefix(st.partial, text), text
	}
	if strings.HasPrefix(text, st.sent) {
		d := text[len(st.sent):]
		st.sent = text
		return d
	}
	if ev.Kind != asr.Final {
		return ""
	}
	sent, final := []rune(st.sent), []rune(text)
	st.sent = text
	if len(final) <= len(sent) {
		return ""
	}
	return string(final[len(sent):])
}

// commonPrefix returns the longest common prefix of a and b, whole runes.
func commonPrefix(a, b string) string {
	n := 0
	for n < len(a) && n < len(b) {
		_, size := utf8.DecodeRuneInString(a[n:])
		if n+size > len(b) || a[n:n+size] != b[n:n+size] {
			break
		}
		n += size
	}
	return a[:n]
}

// addTimestamps adds FunASR's timestamp field: "[[start_ms,end_ms],…]".
func addTimestamps(msg map[string]any, toks []asr.Token) {
	if len(toks) == 0 {
		return
	}
	var b strings.Builder
	b.WriteByte('[')
	for i, t := range toks {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "[%d,%d]", int64(math.Round(t.Start*1000)), int64(math.Round(t.End*1000)))
	}
	b.WriteByte(']')
	msg["timestamp"] = b.String()
}

func (c *wsSession) streamFailed(err error) {
	code, text := websocket.CloseInternalServerErr, "speech recognition failed"
	if ae := asrError(err); ae != nil {
		text = ae.Message
		if ae.Status == 503 {
			code = wsCloseAgain
		} else {
			code = websocket.ClosePolicyViolation
		}
	} else {
		c.log.Warn("asr stream failed", attrErr, err)
	}
	c.fail(code, text)
}

// send writes a JSON message; false when the socket is gone.
func (c *wsSession) send(msg map[string]any) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.aborted {
		return false
	}
	c.ws.SetWriteDeadline(time.Now().Add(wsWriteWait))
	return c.ws.WriteMessage(websocket.TextMessage, jsonString(msg)) == nil
}

// fail sends an error result (so that FunASR clients, which do not read
// close reasons, see it) and closes the socket.
func (c *wsSession) fail(code int, text string) {
	c.send(map[string]any{"mode": c.mode, "wav_name": c.wavName, "text": "", "is_final": true, "error": text})
	c.closeWith(code, text)
}

func (c *wsSession) closeWith(code int, text string) {
	if len(text) > 120 {
		text = text[:120]
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.aborted {
		return
	}
	c.aborted = true
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Second))
}

// abort closes the socket from another goroutine (the daemon stopping):
// the reading handler then returns.
func (c *wsSession) abort(code int, text string) {
	c.closeWith(code, text)
	_ = c.raw.SetReadDeadline(time.Now())
}
