package telegram

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/channels/channelstest"
)

// testAPI is telegram-test-api running in node (testdata/server.js): a Bot
// API emulator the adapter talks to over a real socket, and a simulated
// user who writes to the bot and reads its replies.
type testAPI struct {
	t      *testing.T
	url    string
	stdin  io.WriteCloser
	lines  chan string
	nextID int
	stderr *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// repoRoot walks up from the package directory to go.mod.
func repoRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the package directory")
		}
		dir = parent
	}
}

func startTestAPI(t *testing.T) *testAPI {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("needs node and telegram-test-api: run scripts/setup.sh test")
	}
	mod := filepath.Join(repoRoot(t), ".cache", "npm", "node_modules", "telegram-test-api")
	if _, err := os.Stat(filepath.Join(mod, "package.json")); err != nil {
		t.Skipf("needs telegram-test-api in %s: run scripts/setup.sh test", mod)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()

	cmd := exec.Command(node, filepath.Join("testdata", "server.js"), mod, strconv.Itoa(port))
	cmd.Env = append(os.Environ(), "TG_TOKEN="+testToken)
	s := &testAPI{t: t, lines: make(chan string, 16), stderr: &lockedBuffer{}}
	cmd.Stderr = s.stderr
	if s.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		close(s.lines)
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		s.stdin.Close() // the script stops the server and exits
		select {
		case <-exited:
		case <-time.After(waitLong):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	var ready struct {
		Ready bool   `json:"ready"`
		URL   string `json:"url"`
	}
	if err := json.Unmarshal([]byte(s.line()), &ready); err != nil || !ready.Ready {
		t.Fatalf("telegram-test-api did not start: %v; stderr: %s", err, s.stderr)
	}
	s.url = ready.URL
	return s
}

func (s *testAPI) line() string {
	s.t.Helper()
	select {
	case l, ok := <-s.lines:
		if !ok {
			s.t.Fatalf("telegram-test-api exited; stderr: %s", s.stderr)
		}
		return l
	case <-time.After(waitLong):
		s.t.Fatalf("telegram-test-api did not answer; stderr: %s", s.stderr)
		return ""
	}
}

// do runs one client operation of testdata/server.js.
func (s *testAPI) do(req map[string]any) json.RawMessage {
	s.t.Helper()
	s.nextID++
	req["id"] = s.nextID
	b, _ := json.Marshal(req)
	if _, err := fmt.Fprintf(s.stdin, "%s\n", b); err != nil {
		s.t.Fatal(err)
	}
	var resp struct {
		ID     int             `json:"id"`
		OK     bool            `json:"ok"`
		Result json.RawMessage `json:"result"`
		Error  string          `json:"error"`
	}
	if err := json.Unmarshal([]byte(s.line()), &resp); err != nil || resp.ID != s.nextID || !resp.OK {
		s.t.Fatalf("%s: %+v %v", b, resp, err)
	}
	return resp.Result
}

func TestEndToEndTelegramTestAPI(t *testing.T) {
	api := startTestAPI(t)
	cfg := testConfig(api.url)
	cfg.PollTimeout = time.Second // the emulator answers at once anyway
	a := newTestAdapter(t, cfg)
	sink := channelstest.NewSink()
	startAdapter(t, a, sink)

	// A customer writes to the bot in a private chat.
	customer := map[string]any{"chatId": 4242, "userId": 4242, "firstName": "Li", "type": "private"}
	api.do(map[string]any{"op": "send", "client": customer, "text": "hello, where is my parcel?"})
	msgs := sink.WaitMessages(1, waitLong)
	if len(msgs) != 1 {
		t.Fatalf("delivered %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.Platform != "telegram" || m.Conversation != "4242" || m.ConversationType != channels.Direct ||
		m.Sender.ID != "4242" || m.Sender.Name != "Li" || m.Text != "hello, where is my parcel?" ||
		m.DedupKey == "" || m.Bot != "666" || time.Since(m.Time) > time.Hour {
		t.Errorf("message %+v", m)
	}

	// The bot answers; the customer reads the answer.
	text := "Your parcel **ships today** (tracking: 1Z-99.7)."
	r, err := a.Send(t.Context(), &channels.Outgoing{Conversation: m.Conversation, ConversationType: m.ConversationType,
		ReplyTo: m.ID, Text: text, Markdown: true, Part: 1, Parts: 1})
	if err != nil {
		t.Fatal(err)
	}
	var got []struct {
		Message struct {
			ChatID          json.Number `json:"chat_id"`
			Text            string      `json:"text"`
			ParseMode       string      `json:"parse_mode"`
			ReplyParameters struct {
				MessageID int64 `json:"message_id"`
			} `json:"reply_parameters"`
		} `json:"message"`
		MessageID int64 `json:"messageId"`
	}
	if err := json.Unmarshal(api.do(map[string]any{"op": "updates", "client": customer}), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("customer got %d messages", len(got))
	}
	g := got[0].Message
	if g.ChatID != "4242" || g.Text != toMarkdownV2(text) || g.ParseMode != "MarkdownV2" ||
		"4242:"+strconv.FormatInt(g.ReplyParameters.MessageID, 10) != m.ID {
		t.Errorf("customer got %+v", g)
	}
	if r.PlatformID != "4242:"+strconv.FormatInt(got[0].MessageID, 10) {
		t.Errorf("receipt %q, message id %d", r.PlatformID, got[0].MessageID)
	}

	// In a group, a mention of the bot (username from getMe) is stripped.
	group := map[string]any{"chatId": -100777, "userId": 43, "firstName": "Ann", "type": "group"}
	api.do(map[string]any{"op": "send", "client": group, "text": "@TestNameBot is my refund done?",
		"options": map[string]any{"entities": []map[string]any{{"type": "mention", "offset": 0, "length": 12}}}})
	msgs = sink.WaitMessages(2, waitLong)
	if len(msgs) != 2 {
		t.Fatalf("delivered %d messages, want 2", len(msgs))
	}
	g2 := msgs[1]
	if g2.ConversationType != channels.Group || g2.Conversation != "-100777" || !g2.Mentioned || g2.Text != "is my refund done?" {
		t.Errorf("group message %+v", g2)
	}
	if st := a.State(); !st.Connected {
		t.Errorf("state %+v", st)
	}
}
