package telegram

import (
	"strings"
	"testing"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/channels/channelstest"
)

func TestPollDeliversAndConfirms(t *testing.T) {
	f := newFakeAPI(t)
	for _, u := range []string{updPrivate, updGroupMention, updEdited, updFromBot, updPoll} {
		f.addUpdate(u)
	}
	a := newTestAdapter(t, testConfig(f.srv.URL))
	sink := channelstest.NewSink()
	startAdapter(t, a, sink)

	msgs := sink.WaitMessages(2, waitLong)
	if len(msgs) != 2 {
		t.Fatalf("delivered %d messages, want 2", len(msgs))
	}
	// Everything was taken or ignored: the next poll confirms the batch.
	f.waitOffset(1017)
	if got := sink.Messages(); len(got) != 2 {
		t.Fatalf("delivered %d messages, want 2 (edited, bot and poll updates ignored)", len(got))
	}
	m := msgs[1]
	if m.Channel != "telegram" || m.ID != "-1001:77" || !m.Mentioned || m.Text != "where is order 12?" {
		t.Errorf("group message %+v", m)
	}
	// getMe told the username (not configured).
	if len(f.calls("getMe")) == 0 {
		t.Error("getMe never called")
	}
	first := f.calls("getUpdates")[0].params
	if intParam(first, "timeout") != 5 || string(first["allowed_updates"]) != `["message","edited_message","channel_post"]` {
		t.Errorf("getUpdates params %s %s", first["timeout"], first["allowed_updates"])
	}
	if st := a.State(); !st.Connected || st.LastError != "" {
		t.Errorf("state %+v", st)
	}
}

func TestPollOffsetWaitsForDeliver(t *testing.T) {
	f := newFakeAPI(t)
	f.addUpdate(updPrivate)      // 1001
	f.addUpdate(updGroupMention) // 1002
	cfg := testConfig(f.srv.URL)
	cfg.BotUsername = "ShopBot"
	a := newTestAdapter(t, cfg)
	sink := newFlakySink()
	sink.failKeys["u1002"] = 1 // the store is busy once
	startAdapter(t, a, sink)

	sink.waitCalls(t, 3) // 1001 ok, 1002 fails, 1002 again
	f.waitOffset(1003)
	got := f.offsets()
	// 0: first poll; 1002: 1001 confirmed, 1002 asked again; 1003: all done.
	want := []int64{0, 1002, 1003}
	if len(got) < 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("offsets %v, want %v…", got, want)
	}
	if n := len(sink.Messages()); n != 2 {
		t.Errorf("delivered %d messages, want 2", n)
	}
	if st := a.State(); !strings.Contains(st.LastError, "store busy") {
		t.Errorf("state %+v, want the deliver error", st)
	}
	if len(f.calls("getMe")) != 0 {
		t.Error("getMe called although bot_username is configured")
	}
}

func TestPollRedeliveredUpdateIsOneMessage(t *testing.T) {
	f := newFakeAPI(t)
	f.addUpdate(updPrivate)
	a := newTestAdapter(t, testConfig(f.srv.URL))
	sink := newFlakySink()
	startAdapter(t, a, sink)
	sink.waitCalls(t, 1)
	f.waitOffset(1002)
	// Telegram lost the confirmation and sends the same update again.
	f.addUpdate(updPrivate)
	sink.waitCalls(t, 2)
	if n := len(sink.Messages()); n != 1 {
		t.Errorf("delivered %d messages, want 1", n)
	}
}

func TestPollRestartRedeliversUnconfirmed(t *testing.T) {
	f := newFakeAPI(t)
	f.addUpdate(updPrivate)
	cfg := testConfig(f.srv.URL)
	cfg.BotUsername = "ShopBot"
	sink := newFlakySink()
	sink.failKeys["u1001"] = 1
	a := newTestAdapter(t, cfg)
	if err := a.Start(t.Context(), sink); err != nil {
		t.Fatal(err)
	}
	sink.waitCalls(t, 1) // failed: never confirmed
	if err := a.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	// A new process starts from offset 0 and gets it again.
	b := newTestAdapter(t, cfg)
	startAdapter(t, b, sink)
	if msgs := sink.WaitMessages(1, waitLong); len(msgs) != 1 || msgs[0].Key() != "u1001" {
		t.Fatalf("after restart: %v", msgs)
	}
}

func TestPollMalformedUpdateSkipped(t *testing.T) {
	f := newFakeAPI(t)
	f.addUpdate(`{"update_id":900,"message":"nope"}`)
	f.addUpdate(updPrivate)
	a := newTestAdapter(t, testConfig(f.srv.URL))
	sink := channelstest.NewSink()
	startAdapter(t, a, sink)
	sink.WaitMessages(1, waitLong)
	f.waitOffset(1002)
	if n := sink.Rejections(channels.ReasonMalformed); n != 1 {
		t.Errorf("malformed rejections %d, want 1", n)
	}
}

func TestPollTokenRejected(t *testing.T) {
	f := newFakeAPI(t)
	f.addUpdate(updPrivate)
	f.setToken("999:other")
	cfg := testConfig(f.srv.URL)
	cfg.BotUsername = "ShopBot"
	a := newTestAdapter(t, cfg)
	sink := channelstest.NewSink()
	startAdapter(t, a, sink)
	f.waitCalls("getUpdates", 2) // the state was set before the retry
	st := a.State()
	if st.Connected || !strings.Contains(st.LastError, "bot token rejected") || st.LastErrorAt.IsZero() {
		t.Errorf("state %+v", st)
	}
	if strings.Contains(st.LastError, testToken) {
		t.Errorf("state leaks the token: %q", st.LastError)
	}
	if n := len(sink.Messages()); n != 0 {
		t.Errorf("delivered %d", n)
	}
}

func TestPollConflict(t *testing.T) {
	f := newFakeAPI(t)
	f.setWebhook("https://elsewhere.example/hook")
	cfg := testConfig(f.srv.URL)
	cfg.BotUsername = "ShopBot"
	a := newTestAdapter(t, cfg)
	startAdapter(t, a, channelstest.NewSink())
	f.waitCalls("getUpdates", 2)
	st := a.State()
	if st.Connected || !strings.Contains(st.LastError, "deleteWebhook") || !strings.Contains(st.LastError, "409") {
		t.Errorf("state %+v", st)
	}
}

func TestPollRetriesAfter429And5xx(t *testing.T) {
	f := newFakeAPI(t)
	f.failNext("getUpdates", fakeFail{status: 502, desc: "Bad Gateway"})
	f.failNext("getUpdates", fakeFail{status: 429, desc: "Too Many Requests: retry after 0", retryAfter: 0})
	f.addUpdate(updPrivate)
	cfg := testConfig(f.srv.URL)
	cfg.BotUsername = "ShopBot"
	a := newTestAdapter(t, cfg)
	sink := channelstest.NewSink()
	startAdapter(t, a, sink)
	if msgs := sink.WaitMessages(1, waitLong); len(msgs) != 1 {
		t.Fatal("not delivered after the server recovered")
	}
}

func TestStartStop(t *testing.T) {
	f := newFakeAPI(t)
	a := newTestAdapter(t, testConfig(f.srv.URL))
	if err := a.Stop(t.Context()); err != nil {
		t.Fatalf("stop before start: %v", err)
	}
	sink := channelstest.NewSink()
	if err := a.Start(t.Context(), sink); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(t.Context(), sink); err == nil {
		t.Error("second Start succeeded")
	}
	f.waitCalls("getUpdates", 1) // a long poll is in flight
	if err := a.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := a.Stop(t.Context()); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	if st := a.State(); st.Connected {
		t.Errorf("state after stop %+v", st)
	}
	// Started again, it polls again.
	if err := a.Start(t.Context(), sink); err != nil {
		t.Fatalf("restart: %v", err)
	}
	f.waitCalls("getUpdates", 2)
	if err := a.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
}
