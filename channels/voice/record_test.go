package voice

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/dialogue/session"
	"github.com/zhiyin/zhiyin/internal/store"
	"github.com/zhiyin/zhiyin/internal/store/storetest"
)

// readStereo parses the WAV OpenRecording writes into its two channels.
func readStereo(t *testing.T, wav []byte) (left, right []float32) {
	t.Helper()
	if len(wav) < 44 || string(wav[:4]) != "RIFF" || string(wav[8:16]) != "WAVEfmt " ||
		binary.LittleEndian.Uint16(wav[22:]) != 2 || binary.LittleEndian.Uint32(wav[24:]) != 8000 ||
		binary.LittleEndian.Uint16(wav[34:]) != 16 || int(binary.LittleEndian.Uint32(wav[40:])) != len(wav)-44 {
		t.Fatalf("not a 16-bit stereo 8 kHz WAV: % x", wav[:min(len(wav), 44)])
	}
	for i := 44; i+4 <= len(wav); i += 4 {
		left = append(left, float32(int16(binary.LittleEndian.Uint16(wav[i:])))/32768)
		right = append(right, float32(int16(binary.LittleEndian.Uint16(wav[i+2:])))/32768)
	}
	return left, right
}

// A recorded call decrypts to a WAV with the caller on the left and the
// bot on the right; the file holds no plain audio.
func TestRecording(t *testing.T) {
	cfg := testConfig()
	cfg.Record = true
	r := newRig(t, cfg, nil)
	c := r.call("call-rec", newLine(t))
	r.voice.waitSaid(t, "您好", 1)
	speech := clip8k(t, "espeak_cmn_01.wav", true)
	fed := concat(silence(600*time.Millisecond), speech, silence(1500*time.Millisecond))
	feed(c, fed[:600*lineRate/1000], 20*time.Millisecond, nil)
	feed(c, fed[600*lineRate/1000:], 0, nil)
	turns := r.dlg.waitTurns(t, 1)
	r.voice.waitSaid(t, "好的："+turns[0].Text, 1)
	feed(c, silence(time.Second), 20*time.Millisecond, nil) // the reply goes out
	c.End("bye")

	rec, err := GetCall(context.Background(), r.db.Read(), r.keys, "call-rec")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Recording == "" || filepath.Dir(rec.Recording) != filepath.Join(r.dir, "recordings") {
		t.Fatalf("recording path %q", rec.Recording)
	}
	raw, err := os.ReadFile(rec.Recording)
	if err != nil {
		t.Fatal(err)
	}
	var wav bytes.Buffer
	if err := OpenRecording(rec.Recording, r.keys, &wav); err != nil {
		t.Fatal(err)
	}
	left, right := readStereo(t, wav.Bytes())
	want := len(fed) + lineRate // everything fed, at 8 kHz
	if d := len(left) - want; d < -lineRate/10 || d > lineRate/10 {
		t.Errorf("%d frames recorded, fed %d", len(left), want)
	}
	at := 600 * lineRate / 1000
	if l := rms(left[at : at+len(speech)]); l < 0.02 {
		t.Errorf("caller leg rms %.4f during the speech", l)
	}
	if l := rms(left[:at-lineRate/10]); l > 0.001 {
		t.Errorf("caller leg rms %.4f before the speech", l)
	}
	if b := rms(right[:at]); b < 0.05 {
		t.Errorf("bot leg rms %.4f during the greeting", b)
	}
	if b := rms(right[len(right)-lineRate:]); b < 0.05 {
		t.Errorf("bot leg rms %.4f during the reply", b)
	}
	if bytes.Contains(raw, wav.Bytes()[44:44+4000]) {
		t.Error("the recording file holds plain audio")
	}

	// Another keyring does not open it; a cut file opens up to the cut.
	other, err := session.LoadKeyring(filepath.Join(t.TempDir(), "keys"), true)
	if err != nil {
		t.Fatal(err)
	}
	if err := OpenRecording(rec.Recording, other, &bytes.Buffer{}); !errors.Is(err, ErrRecording) {
		t.Errorf("other key: %v", err)
	}
	cut := filepath.Join(t.TempDir(), "cut.zrec")
	if err := os.WriteFile(cut, raw[:len(raw)*2/3], 0o600); err != nil {
		t.Fatal(err)
	}
	var part bytes.Buffer
	if err := OpenRecording(cut, r.keys, &part); !errors.Is(err, ErrRecording) || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("cut file: %v", err)
	}
	if l, _ := readStereo(t, part.Bytes()); len(l) < lineRate || len(l) >= len(left) {
		t.Errorf("cut file gave %d frames of %d", len(l), len(left))
	}
}

// Prune deletes old ended calls with their turns and recordings, and
// keeps newer and ongoing ones.
func TestPrune(t *testing.T) {
	db := storetest.Open(t, storetest.Fast(), store.MigrationSet{Component: MigrationComponent, FS: Migrations()})
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "not-ours.zrec")
	now := time.Now()
	type row struct {
		id      string
		started time.Time
		ended   bool
		file    string
	}
	rows := []row{
		{"old", now.Add(-48 * time.Hour), true, filepath.Join(dir, "old.zrec")},
		{"old-outside", now.Add(-48 * time.Hour), true, outside},
		{"old-ongoing", now.Add(-48 * time.Hour), false, ""},
		{"new", now.Add(-time.Hour), true, filepath.Join(dir, "new.zrec")},
	}
	for _, r := range rows {
		if r.file != "" {
			if err := os.WriteFile(r.file, []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		err := db.Write(context.Background(), func(tx *sql.Tx) error {
			var ended any
			if r.ended {
				ended = r.started.Add(time.Minute).UnixMilli()
			}
			res, err := tx.Exec(`INSERT INTO voice_calls (call_id, channel, started_at, ended_at, recording) VALUES (?, 'sip', ?, ?, ?)`,
				r.id, r.started.UnixMilli(), ended, r.file)
			if err != nil {
				return err
			}
			id, _ := res.LastInsertId()
			_, err = tx.Exec(`INSERT INTO voice_turns (call_row, seq, source, at) VALUES (?, 1, 'speech', 0)`, id)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	n, err := Prune(context.Background(), db, dir, now.Add(-24*time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("pruned %d, %v", n, err)
	}
	left, err := ListCalls(context.Background(), db.Read(), nil, CallFilter{Turns: true})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range left {
		ids = append(ids, c.CallID)
		if len(c.Transcript) != 1 {
			t.Errorf("%s has %d turns", c.CallID, len(c.Transcript))
		}
	}
	if strings.Join(ids, ",") != "new,old-ongoing" {
		t.Errorf("left %q", ids)
	}
	var turns int
	if err := db.Read().QueryRow(`SELECT COUNT(*) FROM voice_turns`).Scan(&turns); err != nil || turns != 2 {
		t.Errorf("%d turn rows left, %v", turns, err)
	}
	if _, err := os.Stat(rows[0].file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("old recording: %v", err)
	}
	if _, err := os.Stat(outside); err != nil {
		t.Errorf("a file outside the recordings folder was touched: %v", err)
	}
	if _, err := os.Stat(rows[3].file); err != nil {
		t.Errorf("new recording: %v", err)
	}
	if _, err := GetCall(context.Background(), db.Read(), nil, "old"); !errors.Is(err, ErrNoSuchCall) {
		t.Errorf("pruned call: %v", err)
	}
}

// FuzzOpenRecording: any bytes give a WAV, an ErrRecording or a write
// error, never a panic or a huge allocation.
func FuzzOpenRecording(f *testing.F) {
	keys, err := session.LoadKeyring(filepath.Join(f.TempDir(), "keys"), true)
	if err != nil {
		f.Fatal(err)
	}
	dir := f.TempDir()
	r, err := newRecorder(dir, keys, "fuzz-call", time.Now(), 8000, 8000)
	if err != nil {
		f.Fatal(err)
	}
	r.bot(make([]float32, 9000))
	r.caller(make([]float32, 12000))
	path, err := r.close()
	if err != nil {
		f.Fatal(err)
	}
	good, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte(recMagic))
	f.Add([]byte("RIFF"))
	file := filepath.Join(f.TempDir(), "x.zrec")
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(file, b, 0o600); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		err := OpenRecording(file, keys, &out)
		if err == nil && out.Len() < 44 {
			t.Fatalf("no error and no WAV header")
		}
		if err != nil && !errors.Is(err, ErrRecording) {
			t.Fatalf("unexpected error kind: %v", err)
		}
	})
}
