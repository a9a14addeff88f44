package session

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// key32 is a fixed base64 key for key files written by tests.
func key32(b byte) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, keySize)) }

// writeKeys writes a key file with mode perm and returns its path.
func writeKeys(t testing.TB, perm fs.FileMode, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "session.keys")
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // umask
		t.Fatal(err)
	}
	return path
}

func TestParseKeyFile(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		ids     []string
		wantErr string
	}{
		{"one", "a " + key32(1) + "\n", []string{"a"}, ""},
		{"comments blanks crlf no final newline",
			"# header\r\n\r\n  k1 " + key32(1) + "\r\n\t# indented comment\nk-2\t" + key32(2), []string{"k1", "k-2"}, ""},
		{"empty", "", nil, "no key in the file"},
		{"only comments", "# a\n\n# b\n", nil, "no key in the file"},
		{"one field", "# c\nk1\n", nil, "line 2: want `<id> <base64 key>`, got 1 fields"},
		{"three fields", "k1 " + key32(1) + " extra\n", nil, "line 1: want"},
		{"uppercase id", "K1 " + key32(1), nil, `line 1: key id "K1"`},
		{"long id", strings.Repeat("a", 33) + " " + key32(1), nil, "line 1: key id"},
		{"underscore id", "a_b " + key32(1), nil, "line 1: key id"},
		{"duplicate", "a " + key32(1) + "\n\nb " + key32(2) + "\na " + key32(3), nil, `line 4: key id "a" is already used on line 1`},
		{"not base64", "a !!!!", nil, "line 1: key a is not standard base64"},
		{"url base64", "a " + base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32)), nil, "not standard base64"},
		{"unpadded", "a " + strings.TrimRight(key32(1), "="), nil, "not standard base64"},
		{"short key", "a " + base64.StdEncoding.EncodeToString(make([]byte, 16)), nil, "line 1: key a has 16 bytes, want 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := parseKeyFile([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, k := range keys {
				ids = append(ids, k.id)
			}
			if !slices.Equal(ids, tt.ids) {
				t.Fatalf("ids = %v, want %v", ids, tt.ids)
			}
		})
	}
}

func TestLoadKeyringErrorsNameFileAndLine(t *testing.T) {
	path := writeKeys(t, 0o600, "# keys\nbad id "+key32(1)+"\n")
	_, err := LoadKeyring(path, false)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("err = %v, want the path and line 2", err)
	}
}

func TestLoadKeyringCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "keys")
	path := filepath.Join(dir, "session.keys")

	if _, err := LoadKeyring(path, false); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file without create: err = %v, want ErrNotExist", err)
	}
	k, err := LoadKeyring(path, true)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^k[0-9]{14}$`).MatchString(k.ActiveID()) {
		t.Errorf("generated id %q, want k + yyyymmddhhmmss", k.ActiveID())
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode())
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 {
		t.Errorf("key dir mode %v, want 0700", di.Mode())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("key dir holds %d entries, want only the key file (no temporary left)", len(entries))
	}
	// Loading again (create or not) keeps the same key.
	k2, err := LoadKeyring(path, true)
	if err != nil {
		t.Fatal(err)
	}
	if k2.ActiveID() != k.ActiveID() {
		t.Fatalf("second load active %q, want %q", k2.ActiveID(), k.ActiveID())
	}
	_, blob, _ := k.Seal([]byte("x"), nil)
	if _, err := k2.Open(k.ActiveID(), blob, nil); err != nil {
		t.Fatal(err)
	}
}

func TestLoadKeyringPermissions(t *testing.T) {
	tests := []struct {
		perm fs.FileMode
		ok   bool
	}{
		{0o600, true},
		{0o400, true},
		{0o640, true}, // root-owned, read by the zhiyin group
		{0o644, false},
		{0o660, false},
		{0o604, false},
		{0o620, false},
		{0o666, false},
	}
	for _, tt := range tests {
		t.Run(tt.perm.String(), func(t *testing.T) {
			path := writeKeys(t, tt.perm, "a "+key32(1)+"\n")
			_, err := LoadKeyring(path, false)
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "chmod 600 "+path) {
				t.Fatalf("err = %v, want a refusal saying chmod 600 %s", err, path)
			}
		})
	}
	t.Run("directory", func(t *testing.T) {
		if _, err := LoadKeyring(t.TempDir(), false); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestSealOpen(t *testing.T) {
	path := writeKeys(t, 0o600, "old "+key32(1)+"\nnew "+key32(2)+"\n")
	k, err := LoadKeyring(path, false)
	if err != nil {
		t.Fatal(err)
	}
	if k.ActiveID() != "new" {
		t.Fatalf("active %q, want the last key", k.ActiveID())
	}
	plain, aad := []byte("我的手机号是13800138000"), []byte("session:abc")
	id, blob, err := k.Seal(plain, aad)
	if err != nil {
		t.Fatal(err)
	}
	if id != "new" || len(blob) != nonceSize+len(plain)+16 {
		t.Fatalf("id %q, blob %d bytes", id, len(blob))
	}
	_, blob2, _ := k.Seal(plain, aad)
	if bytes.Equal(blob[:nonceSize], blob2[:nonceSize]) {
		t.Fatal("two seals share a nonce")
	}
	got, err := k.Open(id, blob, aad)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if got, err := k.Open("new", mustSeal(t, k, nil, nil), nil); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("empty round trip = %#v, %v", got, err)
	}

	// The same id with other key material (a key file swapped under it).
	other, err := LoadKeyring(writeKeys(t, 0o600, "new "+key32(9)+"\n"), false)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(blob)
	flipped[len(flipped)-1] ^= 1
	tests := []struct {
		name string
		k    *Keyring
		id   string
		blob []byte
		aad  []byte
		want error
	}{
		{"other row", k, id, blob, []byte("session:abd"), ErrDecrypt},
		{"no aad", k, id, blob, nil, ErrDecrypt},
		{"flipped tag", k, id, flipped, aad, ErrDecrypt},
		{"truncated", k, id, blob[:nonceSize+3], aad, ErrDecrypt},
		{"empty", k, id, nil, aad, ErrDecrypt},
		{"other key id in file", k, "old", blob, aad, ErrDecrypt},
		{"other key material", other, id, blob, aad, ErrDecrypt},
		{"unknown id", k, "gone", blob, aad, ErrUnknownKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.k.Open(tt.id, tt.blob, tt.aad); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func mustSeal(t testing.TB, k *Keyring, plain, aad []byte) []byte {
	t.Helper()
	_, blob, err := k.Seal(plain, aad)
	if err != nil {
		t.Fatal(err)
	}
	return blob
}

func TestAddKeyReloadAndOpenRereads(t *testing.T) {
	content := "# my comment\na " + key32(1) + "\n"
	path := writeKeys(t, 0o640, content)
	daemon, err := LoadKeyring(path, false)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := LoadKeyring(path, false)
	if err != nil {
		t.Fatal(err)
	}

	id, err := AddKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^k[0-9]{14}$`).MatchString(id) {
		t.Errorf("new id %q", id)
	}
	data, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(data), content) || !strings.HasSuffix(string(data), "\n") {
		t.Errorf("AddKey did not keep the file's lines:\n%s", data)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v after AddKey, want 0640 kept", fi.Mode())
	}
	id2, err := AddKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if id2 == id {
		t.Errorf("second id %q repeats the first", id2)
	}

	if daemon.ActiveID() != "a" {
		t.Fatal("the active key changed without a reload")
	}
	if err := cli.Reload(); err != nil {
		t.Fatal(err)
	}
	if cli.ActiveID() != id2 {
		t.Fatalf("after Reload active %q, want %q", cli.ActiveID(), id2)
	}
	// The daemon meets the new id in a row: Open re-reads the file.
	blob := mustSeal(t, cli, []byte("hi"), nil)
	if got, err := daemon.Open(id2, blob, nil); err != nil || string(got) != "hi" {
		t.Fatalf("Open with a key added by another process = %q, %v", got, err)
	}
	if daemon.ActiveID() != id2 {
		t.Errorf("daemon active %q after the re-read, want %q", daemon.ActiveID(), id2)
	}
	// Seal notices a changed file by itself (at most once a second; the
	// test makes the check due instead of waiting).
	cli2, err := LoadKeyring(path, false)
	if err != nil {
		t.Fatal(err)
	}
	cli2.nextCheck.Store(math.MaxInt64) // no check due
	id3, err := AddKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, _, _ := cli2.Seal(nil, nil); got != id2 {
		t.Fatalf("Seal before the check is due used %q, want %q", got, id2)
	}
	cli2.nextCheck.Store(0)
	if got, _, _ := cli2.Seal(nil, nil); got != id3 {
		t.Fatalf("Seal after the check used %q, want the added key %q", got, id3)
	}
	// A failed reload keeps the loaded keys.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := daemon.Reload(); err == nil {
		t.Fatal("Reload accepted a world-readable file")
	}
	if _, err := daemon.Open(id2, blob, nil); err != nil {
		t.Fatalf("keys lost after a failed reload: %v", err)
	}
	if _, err := AddKey(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("AddKey on a world-readable file: %v", err)
	}
}

func TestRetireKeys(t *testing.T) {
	path := writeKeys(t, 0o600, "# head\na "+key32(1)+"\n# about b\nb "+key32(2)+"\nc "+key32(3)+"\nd "+key32(4)+"\n")
	inUse := map[string]bool{"b": true}
	removed, err := RetireKeys(path, func(id string) bool { return inUse[id] })
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{"a", "c"}) {
		t.Fatalf("removed %v, want [a c] (d is active)", removed)
	}
	data, _ := os.ReadFile(path)
	want := "# head\n# about b\nb " + key32(2) + "\nd " + key32(4) + "\n"
	if string(data) != want {
		t.Fatalf("file after RetireKeys:\n%s\nwant\n%s", data, want)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	before, _ := os.Stat(path)
	removed, err = RetireKeys(path, func(string) bool { return false })
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{"b"}) {
		t.Fatalf("removed %v, want [b]", removed)
	}
	after, _ := os.Stat(path)
	if os.SameFile(before, after) {
		t.Error("the file was not replaced by the retirement of b")
	}
	// Only the active key is left: nothing to retire, the file is left alone.
	removed, err = RetireKeys(path, func(string) bool { return false })
	if err != nil || len(removed) != 0 {
		t.Fatalf("retiring the active key: removed %v, %v", removed, err)
	}
	if again, _ := os.Stat(path); !os.SameFile(after, again) {
		t.Error("the file was rewritten though nothing was retired")
	}
	k, err := LoadKeyring(path, false)
	if err != nil || k.ActiveID() != "d" {
		t.Fatalf("after retiring: %v, active %q", err, k.ActiveID())
	}
}

func TestNewKeyID(t *testing.T) {
	now := time.Date(2025, 3, 1, 8, 9, 10, 0, time.FixedZone("CST", 8*3600))
	taken := map[string]bool{"k20250301000910": true, "k20250301000910-2": true}
	if got := newKeyID(now, func(id string) bool { return taken[id] }); got != "k20250301000910-3" {
		t.Fatalf("newKeyID = %q, want k20250301000910-3 (UTC, first free suffix)", got)
	}
}

func TestKeyFileThroughSymlink(t *testing.T) {
	path := writeKeys(t, 0o600, "a "+key32(1)+"\n")
	link := filepath.Join(t.TempDir(), "link.keys")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	if _, err := AddKey(link); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v", err)
	}
	k, err := LoadKeyring(link, false)
	if err != nil || k.ActiveID() == "a" {
		t.Fatalf("load through link: %v, active %q", err, k.ActiveID())
	}
}

// FuzzParseKeyFile checks that the key file parser never panics and that
// what it accepts is well formed and survives a rewrite.
func FuzzParseKeyFile(f *testing.F) {
	f.Add([]byte("a " + key32(1) + "\n"))
	f.Add([]byte("# c\r\n\r\nk20250101000000 " + key32(7) + "\r\nk2\t" + key32(8)))
	f.Add([]byte("a " + key32(1) + "\na " + key32(2)))
	f.Add([]byte("A b c\n"))
	f.Add([]byte("x " + strings.TrimRight(key32(3), "=")))
	f.Add([]byte("\x00 \xff\n#"))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := parseKeyFile(data)
		if err != nil {
			if keys != nil {
				t.Fatal("keys returned with an error")
			}
			return
		}
		if len(keys) == 0 {
			t.Fatal("no keys and no error")
		}
		var out strings.Builder
		seen := map[string]bool{}
		for _, k := range keys {
			if !validKeyID(k.id) || seen[k.id] || len(k.secret) != keySize || k.line < 1 {
				t.Fatalf("bad key accepted: %q (%d bytes, line %d)", k.id, len(k.secret), k.line)
			}
			seen[k.id] = true
			out.WriteString(formatKeyLine(k.id, k.secret))
		}
		again, err := parseKeyFile([]byte(out.String()))
		if err != nil || len(again) != len(keys) {
			t.Fatalf("rewritten file does not parse back: %v", err)
		}
		for i := range keys {
			if again[i].id != keys[i].id || !bytes.Equal(again[i].secret, keys[i].secret) {
				t.Fatalf("key %d changed in the rewrite", i)
			}
		}
	})
}

// FuzzOpen feeds arbitrary stored blobs to Open: it must never panic and
// never accept a blob it did not seal.
func FuzzOpen(f *testing.F) {
	path := filepath.Join(f.TempDir(), "keys")
	if err := os.WriteFile(path, []byte("a "+key32(1)+"\n"), 0o600); err != nil {
		f.Fatal(err)
	}
	k, err := LoadKeyring(path, false)
	if err != nil {
		f.Fatal(err)
	}
	good := mustSeal(f, k, []byte("hello"), []byte("session:x"))
	f.Add(good, "session:x")
	f.Add(good[:nonceSize], "session:x")
	f.Add([]byte{}, "")
	f.Fuzz(func(t *testing.T, blob []byte, aad string) {
		plain, err := k.Open("a", blob, []byte(aad))
		// Fuzz workers re-run the setup: the seed may be another valid
		// seal of the same text under the same (fixed) key.
		if err == nil && (aad != "session:x" || string(plain) != "hello") {
			t.Fatalf("Open accepted a forged blob: %q", plain)
		}
		if err != nil && !errors.Is(err, ErrDecrypt) {
			t.Fatalf("err = %v, want ErrDecrypt", err)
		}
	})
}

// TestKeyringConcurrentReload seals and opens while the key file rotates
// and reloads (run with -race).
func TestKeyringConcurrentReload(t *testing.T) {
	path := writeKeys(t, 0o600, "a "+key32(1)+"\n")
	k, err := LoadKeyring(path, false)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				aad := []byte(fmt.Sprint(g, i))
				id, blob, err := k.Seal(aad, aad)
				if err != nil {
					t.Error(err)
					return
				}
				if got, err := k.Open(id, blob, aad); err != nil || !bytes.Equal(got, aad) {
					t.Errorf("Open = %q, %v", got, err)
					return
				}
			}
		})
	}
	for range 3 {
		if _, err := AddKey(path); err != nil {
			t.Fatal(err)
		}
		if err := k.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
}
