package telegram

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/zhiyin/zhiyin/channels"
)

var testMe = identity{ID: testBotID, Username: "ShopBot"}

// Updates as the Bot API sends them (trimmed to what matters).
const (
	updPrivate      = `{"update_id":1001,"message":{"message_id":5,"from":{"id":42,"is_bot":false,"first_name":"Li","last_name":"Wei","username":"liwei","language_code":"zh"},"chat":{"id":42,"first_name":"Li","type":"private"},"date":1700000000,"text":"  where is my parcel?  "}}`
	updGroupMention = `{"update_id":1002,"message":{"message_id":77,"from":{"id":43,"is_bot":false,"first_name":"Ann"},"chat":{"id":-1001,"title":"Shop fans","type":"supergroup"},"date":1700000001,"text":"@ShopBot where is order 12?","entities":[{"offset":0,"length":8,"type":"mention"}]}}`
	updGroupOther   = `{"update_id":1003,"message":{"message_id":78,"from":{"id":43,"is_bot":false,"username":"ann"},"chat":{"id":-1001,"type":"group"},"date":1700000002,"text":"hi @bob and @ShopBot there","entities":[{"offset":3,"length":4,"type":"mention"},{"offset":12,"length":8,"type":"mention"}]}}`
	updGroupPlain   = `{"update_id":1004,"message":{"message_id":79,"from":{"id":43,"is_bot":false,"first_name":"Ann"},"chat":{"id":-1001,"type":"group"},"date":1700000003,"text":"just chatting","entities":[{"offset":0,"length":4,"type":"text_mention","user":{"id":99,"is_bot":false,"first_name":"Zed"}}]}}`
	updReplyToBot   = `{"update_id":1005,"message":{"message_id":80,"message_thread_id":80,"from":{"id":43,"is_bot":false,"first_name":"Ann"},"chat":{"id":-1001,"type":"supergroup"},"date":1700000004,"text":"and the refund?","reply_to_message":{"message_id":60,"from":{"id":123456,"is_bot":true,"first_name":"Shop","username":"ShopBot"},"chat":{"id":-1001,"type":"supergroup"},"date":1700000000,"text":"Your parcel is on its way."}}}`
	updStart        = `{"update_id":1006,"message":{"message_id":6,"from":{"id":42,"is_bot":false,"first_name":"Li"},"chat":{"id":42,"type":"private"},"date":1700000005,"text":"/start","entities":[{"offset":0,"length":6,"type":"bot_command"}]}}`
	updCommandAt    = `{"update_id":1007,"message":{"message_id":81,"from":{"id":43,"is_bot":false,"first_name":"Ann"},"chat":{"id":-1001,"type":"supergroup"},"date":1700000006,"text":"/help@ShopBot refunds","entities":[{"offset":0,"length":13,"type":"bot_command"}]}}`
	updTopic        = `{"update_id":1008,"message":{"message_id":82,"message_thread_id":3,"is_topic_message":true,"from":{"id":43,"is_bot":false,"first_name":"Ann"},"chat":{"id":-1001,"type":"supergroup","is_forum":true},"date":1700000007,"text":"😀 @ShopBot hi","entities":[{"offset":3,"length":8,"type":"mention"}]}}`
	updPhoto        = `{"update_id":1009,"message":{"message_id":7,"from":{"id":42,"is_bot":false,"first_name":"Li"},"chat":{"id":42,"type":"private"},"date":1700000008,"photo":[{"file_id":"small","file_unique_id":"s","width":90,"height":60,"file_size":1000},{"file_id":"big","file_unique_id":"b","width":1280,"height":853,"file_size":90000},{"file_id":"mid","file_unique_id":"m","width":320,"height":213,"file_size":9000}],"caption":"broken box @ShopBot","caption_entities":[{"offset":11,"length":8,"type":"mention"}]}}`
	updVoice        = `{"update_id":1010,"message":{"message_id":8,"from":{"id":42,"is_bot":false,"first_name":"Li"},"chat":{"id":42,"type":"private"},"date":1700000009,"voice":{"file_id":"voice1","file_unique_id":"v","duration":4,"mime_type":"audio/ogg","file_size":8000}}}`
	updDocument     = `{"update_id":1011,"message":{"message_id":9,"from":{"id":42,"is_bot":false,"first_name":"Li"},"chat":{"id":42,"type":"private"},"date":1700000010,"document":{"file_id":"doc1","file_unique_id":"d","file_name":"invoice.pdf","mime_type":"application/pdf","file_size":12345},"audio":{"file_id":"aud1","file_unique_id":"a","duration":180,"performer":"Band","title":"Song","mime_type":"audio/mpeg","file_size":3000000},"video":{"file_id":"vid1","file_unique_id":"x","width":640,"height":480,"duration":12,"mime_type":"video/mp4","file_size":500000}}}`
	updChannelPost  = `{"update_id":1012,"channel_post":{"message_id":300,"sender_chat":{"id":-1002,"title":"Shop news","type":"channel"},"chat":{"id":-1002,"title":"Shop news","type":"channel"},"date":1700000011,"text":"New arrivals"}}`
	updEdited       = `{"update_id":1013,"edited_message":{"message_id":5,"from":{"id":42,"is_bot":false,"first_name":"Li"},"chat":{"id":42,"type":"private"},"date":1700000000,"edit_date":1700000100,"text":"where is my parcel??"}}`
	updFromBot      = `{"update_id":1014,"message":{"message_id":83,"from":{"id":555,"is_bot":true,"first_name":"Other","username":"OtherBot"},"chat":{"id":-1001,"type":"supergroup"},"date":1700000012,"text":"beep"}}`
	updService      = `{"update_id":1015,"message":{"message_id":84,"from":{"id":43,"is_bot":false,"first_name":"Ann"},"chat":{"id":-1001,"type":"supergroup"},"date":1700000013,"new_chat_members":[{"id":44,"is_bot":false,"first_name":"Bo"}]}}`
	updPoll         = `{"update_id":1016,"poll":{"id":"1","question":"?","options":[]}}`
	updAnonAdmin    = `{"update_id":1017,"message":{"message_id":85,"from":{"id":1087968824,"is_bot":true,"first_name":"Group","username":"GroupAnonymousBot"},"sender_chat":{"id":-1001,"title":"Shop fans","type":"supergroup"},"chat":{"id":-1001,"title":"Shop fans","type":"supergroup"},"date":1700000014,"text":"@shopbot status?","entities":[{"offset":0,"length":8,"type":"mention"}]}}`
	updMillis       = `{"update_id":1018,"message":{"message_id":10,"from":{"id":42,"is_bot":false,"first_name":"Li"},"chat":{"id":42,"type":"private"},"date":1700000000123,"text":"ms"}}`
)

func TestParseUpdate(t *testing.T) {
	at := func(s int64) time.Time { return time.Unix(s, 0).UTC() }
	for _, tc := range []struct {
		name string
		raw  string
		want *channels.Message // nil: ignored; Raw, Platform, Bot filled in below
	}{
		{"private", updPrivate, &channels.Message{ID: "42:5", DedupKey: "u1001", Conversation: "42", ConversationType: channels.Direct,
			Sender: channels.Sender{ID: "42", Name: "Li Wei"}, Time: at(1700000000), Text: "where is my parcel?"}},
		{"group mention stripped", updGroupMention, &channels.Message{ID: "-1001:77", DedupKey: "u1002", Conversation: "-1001", ConversationType: channels.Group,
			Sender: channels.Sender{ID: "43", Name: "Ann"}, Mentions: []string{"123456"}, Mentioned: true, Time: at(1700000001), Text: "where is order 12?"}},
		{"mention in the middle", updGroupOther, &channels.Message{ID: "-1001:78", DedupKey: "u1003", Conversation: "-1001", ConversationType: channels.Group,
			Sender: channels.Sender{ID: "43", Name: "ann"}, Mentions: []string{"123456", "@bob"}, Mentioned: true, Time: at(1700000002), Text: "hi @bob and there"}},
		{"text mention of someone else", updGroupPlain, &channels.Message{ID: "-1001:79", DedupKey: "u1004", Conversation: "-1001", ConversationType: channels.Group,
			Sender: channels.Sender{ID: "43", Name: "Ann"}, Mentions: []string{"99"}, Time: at(1700000003), Text: "just chatting"}},
		{"reply to the bot", updReplyToBot, &channels.Message{ID: "-1001:80", DedupKey: "u1005", Conversation: "-1001", ConversationType: channels.Group,
			ReplyTo: "-1001:60", Sender: channels.Sender{ID: "43", Name: "Ann"}, Mentioned: true, Time: at(1700000004), Text: "and the refund?"}},
		{"start command", updStart, &channels.Message{ID: "42:6", DedupKey: "u1006", Conversation: "42", ConversationType: channels.Direct,
			Sender: channels.Sender{ID: "42", Name: "Li"}, Mentioned: true, Time: at(1700000005), Text: "/start"}},
		{"command for the bot", updCommandAt, &channels.Message{ID: "-1001:81", DedupKey: "u1007", Conversation: "-1001", ConversationType: channels.Group,
			Sender: channels.Sender{ID: "43", Name: "Ann"}, Mentioned: true, Time: at(1700000006), Text: "/help refunds"}},
		{"forum topic, UTF-16 offsets", updTopic, &channels.Message{ID: "-1001:82", DedupKey: "u1008", Conversation: "-1001", ConversationType: channels.Group,
			Thread: "3", Sender: channels.Sender{ID: "43", Name: "Ann"}, Mentions: []string{"123456"}, Mentioned: true, Time: at(1700000007), Text: "😀 hi"}},
		{"photo with caption", updPhoto, &channels.Message{ID: "42:7", DedupKey: "u1009", Conversation: "42", ConversationType: channels.Direct,
			Sender: channels.Sender{ID: "42", Name: "Li"}, Mentions: []string{"123456"}, Mentioned: true, Time: at(1700000008), Text: "broken box",
			Media: []channels.Media{{Kind: channels.Image, Key: "big", Size: 90000}}}},
		{"voice", updVoice, &channels.Message{ID: "42:8", DedupKey: "u1010", Conversation: "42", ConversationType: channels.Direct,
			Sender: channels.Sender{ID: "42", Name: "Li"}, Time: at(1700000009),
			Media: []channels.Media{{Kind: channels.Voice, Key: "voice1", MIME: "audio/ogg", Size: 8000, Duration: 4 * time.Second}}}},
		{"document, audio, video", updDocument, &channels.Message{ID: "42:9", DedupKey: "u1011", Conversation: "42", ConversationType: channels.Direct,
			Sender: channels.Sender{ID: "42", Name: "Li"}, Time: at(1700000010),
			Media: []channels.Media{
				{Kind: channels.File, Key: "doc1", MIME: "application/pdf", Size: 12345, Name: "invoice.pdf"},
				{Kind: channels.File, Key: "aud1", MIME: "audio/mpeg", Size: 3000000, Name: "Band - Song", Duration: 180 * time.Second},
				{Kind: channels.Video, Key: "vid1", MIME: "video/mp4", Size: 500000, Duration: 12 * time.Second},
			}}},
		{"channel post", updChannelPost, &channels.Message{ID: "-1002:300", DedupKey: "u1012", Conversation: "-1002", ConversationType: channels.Channel,
			Sender: channels.Sender{ID: "-1002", Name: "Shop news"}, Time: at(1700000011), Text: "New arrivals"}},
		{"edited message ignored", updEdited, nil},
		{"bot's message ignored", updFromBot, nil},
		{"service message ignored", updService, nil},
		{"unknown update type ignored", updPoll, nil},
		{"anonymous admin is a person", updAnonAdmin, &channels.Message{ID: "-1001:85", DedupKey: "u1017", Conversation: "-1001", ConversationType: channels.Group,
			Sender: channels.Sender{ID: "-1001", Name: "Shop fans"}, Mentions: []string{"123456"}, Mentioned: true, Time: at(1700000014), Text: "status?"}},
		{"milliseconds", updMillis, &channels.Message{ID: "42:10", DedupKey: "u1018", Conversation: "42", ConversationType: channels.Direct,
			Sender: channels.Sender{ID: "42", Name: "Li"}, Time: time.UnixMilli(1700000000123).UTC(), Text: "ms"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, m, err := parseUpdate([]byte(tc.raw), testMe)
			if err != nil {
				t.Fatal(err)
			}
			var u struct {
				UpdateID int64 `json:"update_id"`
			}
			_ = json.Unmarshal([]byte(tc.raw), &u)
			if id != u.UpdateID {
				t.Errorf("update id %d, want %d", id, u.UpdateID)
			}
			if tc.want == nil {
				if m != nil {
					t.Fatalf("delivered %+v, want it ignored", m)
				}
				return
			}
			if m == nil {
				t.Fatal("ignored, want a message")
			}
			want := *tc.want
			want.Platform, want.Bot, want.Raw = "telegram", "123456", json.RawMessage(tc.raw)
			if !reflect.DeepEqual(m, &want) {
				gj, _ := json.MarshalIndent(m, "", " ")
				wj, _ := json.MarshalIndent(&want, "", " ")
				t.Errorf("got\n%s\nwant\n%s", gj, wj)
			}
		})
	}
}

func TestParseUpdateUsernameUnknown(t *testing.T) {
	// Before getMe answered: the token's id still recognises replies.
	_, m, err := parseUpdate([]byte(updGroupMention), identity{ID: testBotID})
	if err != nil || m == nil {
		t.Fatal(m, err)
	}
	if m.Mentioned || m.Text != "@ShopBot where is order 12?" || !reflect.DeepEqual(m.Mentions, []string{"@ShopBot"}) {
		t.Errorf("got mentioned=%v text=%q mentions=%v", m.Mentioned, m.Text, m.Mentions)
	}
	_, m, _ = parseUpdate([]byte(updReplyToBot), identity{ID: testBotID})
	if m == nil || !m.Mentioned {
		t.Errorf("reply to the bot not mentioned: %+v", m)
	}
}

func TestParseUpdateMalformed(t *testing.T) {
	for _, raw := range []string{
		``, `{`, `[]`, `{"update_id":0,"message":{"message_id":1,"chat":{"id":1,"type":"private"},"text":"x"}}`,
		`{"message":{"message_id":1,"chat":{"id":1},"text":"x"}}`,
		`{"update_id":5,"message":{"chat":{"id":1},"text":"x"}}`,
		`{"update_id":6,"message":"nope"}`,
	} {
		id, m, err := parseUpdate([]byte(raw), testMe)
		if !errors.Is(err, errMalformed) || m != nil {
			t.Errorf("parseUpdate(%s) = %v, %v; want errMalformed", raw, m, err)
		}
		if raw == `{"update_id":6,"message":"nope"}` && id != 6 {
			t.Errorf("malformed update 6: id %d, want 6 (so that polling moves past it)", id)
		}
	}
}

// FuzzParseUpdate: any bytes; a delivered message is complete and its text
// valid UTF-8.
func FuzzParseUpdate(f *testing.F) {
	for _, s := range []string{updPrivate, updGroupMention, updGroupOther, updGroupPlain, updReplyToBot, updStart,
		updCommandAt, updTopic, updPhoto, updVoice, updDocument, updChannelPost, updEdited, updFromBot, updService,
		updPoll, updAnonAdmin, updMillis,
		`{"update_id":1,"message":{"message_id":1,"chat":{"id":1,"type":"group"},"text":"@a","entities":[{"type":"mention","offset":-1,"length":99},{"type":"bot_command","offset":1,"length":1}]}}`,
		`{"update_id":1,"message":{"message_id":1,"chat":{"id":1},"voice":{"file_id":"v","duration":-9223372036854775808}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		id, m, err := parseUpdate(raw, testMe)
		if err != nil {
			if !errors.Is(err, errMalformed) || m != nil {
				t.Fatalf("error %v with message %v", err, m)
			}
			return
		}
		if id <= 0 {
			t.Fatalf("update id %d accepted", id)
		}
		if m == nil {
			return
		}
		if m.ID == "" || m.Conversation == "" || m.DedupKey != "u"+strings.TrimPrefix(m.DedupKey, "u") || m.Time.IsZero() {
			t.Fatalf("incomplete message %+v", m)
		}
		if !utf8.ValidString(m.Text) || m.Text != strings.TrimSpace(m.Text) {
			t.Fatalf("text %q", m.Text)
		}
		if m.Text == "" && len(m.Media) == 0 {
			t.Fatal("empty message delivered")
		}
		for _, md := range m.Media {
			if md.Key == "" || md.Duration < 0 {
				t.Fatalf("media %+v", md)
			}
		}
	})
}
