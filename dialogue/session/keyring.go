package session

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	// keySize is the AES-256 key length.
	keySize = 32
	// nonceSize is the GCM nonce that starts every sealed blob.
	nonceSize = 12
	// maxKeyIDLen bounds a key id.
	maxKeyIDLen = 32
	// maxKeyFileSize bounds what LoadKeyring reads: a key line is under 80
	// bytes, so this is thousands of keys.
	maxKeyFileSize = 1 << 20
	// keyFilePerm is the mode a generated key file gets.
	keyFilePerm fs.FileMode = 0o600
	// keyCheckInterval is how often Seal looks whether the key file
	// changed on disk, so that a key added by another process (AddKey)
	// becomes active without a SIGHUP.
	keyCheckInterval = time.Second
)

// keyFileHeader starts a key file that LoadKeyring generates.
const keyFileHeader = `# zhiyin session encryption keys (AES-256-GCM).
# One key a line: <id> <base64 of 32 random bytes>. The LAST key seals new
# data; the others only open what they sealed. Never edit a key in place:
# add one (it becomes active), re-encrypt, then retire the old ones.
# Losing this file makes every stored conversation unreadable: back it up
# apart from the database.
`

// Keyring holds the AES-256-GCM keys of the key file and seals and opens
// the session store's encrypted columns. The last key of the file is the
// active one: Seal uses it, Open accepts any key of the file. A Keyring is
// safe for concurrent use; Reload swaps the keys atomically.
type Keyring struct {
	path string

	// reloadMu serialises re-reads of the file.
	reloadMu sync.Mutex

	mu     sync.RWMutex
	keys   map[string]cipher.AEAD
	active string
	loaded fs.FileInfo // the file as last read, to skip needless re-reads

	// nextCheck is when (unix ns) Seal next looks at the file.
	nextCheck atomic.Int64
}

// fileKey is one key line of a key file.
type fileKey struct {
	id     string
	secret []byte
	line   int // 1-based
}

// LoadKeyring reads the key file at path. When the file is missing and
// create is true it generates one with a single random key (id "k" + the
// UTC time as yyyymmddhhmmss), mode 0600, creating the parent directory
// with mode 0700 when it is missing; two processes creating it at once
// end up with the same file. It does file I/O and blocks for it.
//
// It refuses a file that users other than its owner (and its group, which
// may read it: mode 0640 for a root-owned file read by the zhiyin group)
// could read or write, a file that is not a regular file, and a malformed
// one (the error names the line).
func LoadKeyring(path string, create bool) (*Keyring, error) {
	if path == "" {
		return nil, errors.New("load session keys: the key file path is empty: set it in the configuration")
	}
	k := &Keyring{path: path}
	err := k.Reload()
	if errors.Is(err, fs.ErrNotExist) && create {
		if err := createKeyFile(path); err != nil {
			return nil, err
		}
		err = k.Reload()
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("load session keys: key file %s: %w: restore it from the backup that goes with this database, or let zhiyin create a new one", path, fs.ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	return k, nil
}

// ActiveID returns the id of the key Seal uses now.
func (k *Keyring) ActiveID() string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.active
}

// Seal encrypts plain with the active key, binding it to aad (which is not
// stored: Open must be given the same aad). It returns the key id to store
// beside the blob, and blob = 12-byte random nonce || ciphertext || 16-byte
// tag. At most once a second it looks whether the key file changed on
// disk and, if so, re-reads it (a key added by AddKey in another process
// becomes active within a second; a file that no longer loads is ignored
// here and keeps the loaded keys: Reload reports why). With random nonces a
// key should seal fewer than 2^32 values: rotate keys (AddKey, Reencrypt)
// long before that.
func (k *Keyring) Seal(plain, aad []byte) (keyID string, blob []byte, err error) {
	k.maybeRefresh()
	k.mu.RLock()
	id, a := k.active, k.keys[k.active]
	k.mu.RUnlock()
	if a == nil {
		return "", nil, errors.New("seal: the keyring holds no key: load it with LoadKeyring")
	}
	return id, a.Seal(nil, nil, plain, aad), nil
}

// Open decrypts a blob that Seal returned with key keyID and the same aad.
// When keyID is not loaded it re-reads the key file once if it changed on
// disk (another process added a key) before failing with ErrUnknownKey. A
// blob that is altered, truncated or bound to another aad fails with
// ErrDecrypt. The result is a new slice owned by the caller.
func (k *Keyring) Open(keyID string, blob, aad []byte) ([]byte, error) {
	a := k.aead(keyID)
	if a == nil {
		if err := k.reloadIfChanged(); err != nil {
			return nil, fmt.Errorf("open sealed data with key %q: %w (re-reading the key file: %v)", keyID, ErrUnknownKey, err)
		}
		if a = k.aead(keyID); a == nil {
			return nil, fmt.Errorf("open sealed data with key %q: %w", keyID, ErrUnknownKey)
		}
	}
	plain, err := a.Open(nil, nil, blob, aad)
	if err != nil {
		return nil, fmt.Errorf("open sealed data with key %q: %w", keyID, ErrDecrypt)
	}
	if plain == nil {
		plain = []byte{}
	}
	return plain, nil
}

// maybeRefresh re-reads the key file when it changed, at most once per
// keyCheckInterval; one caller at a time does the check.
func (k *Keyring) maybeRefresh() {
	now := time.Now().UnixNano()
	next := k.nextCheck.Load()
	if now < next || !k.nextCheck.CompareAndSwap(next, now+int64(keyCheckInterval)) {
		return
	}
	_ = k.reloadIfChanged() // errors keep the loaded keys; Reload reports them
}

func (k *Keyring) aead(id string) cipher.AEAD {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.keys[id]
}

// Reload re-reads the key file and replaces the keys; the active key may
// change. On error the keys loaded before stay in use. The daemon calls it
// on SIGHUP; Open calls it by itself when it meets an unknown key id.
func (k *Keyring) Reload() error {
	k.reloadMu.Lock()
	defer k.reloadMu.Unlock()
	return k.reloadLocked()
}

// reloadIfChanged re-reads the file unless it is the very file last read
// (same inode, size and modification time): a database full of rows with
// an unknown key must not re-read the file once per row.
func (k *Keyring) reloadIfChanged() error {
	k.reloadMu.Lock()
	defer k.reloadMu.Unlock()
	fi, err := os.Stat(k.path)
	if err != nil {
		return fmt.Errorf("load session keys: %w", err)
	}
	k.mu.RLock()
	prev := k.loaded
	k.mu.RUnlock()
	if prev != nil && os.SameFile(prev, fi) && prev.Size() == fi.Size() && prev.ModTime().Equal(fi.ModTime()) {
		return nil
	}
	return k.reloadLocked()
}

func (k *Keyring) reloadLocked() error {
	keys, fi, _, err := readKeyFile(k.path)
	if err != nil {
		return err
	}
	aeads := make(map[string]cipher.AEAD, len(keys))
	for _, fk := range keys {
		a, err := newAEAD(fk.secret)
		if err != nil {
			return fmt.Errorf("load session keys from %s: line %d: %w", k.path, fk.line, err)
		}
		aeads[fk.id] = a
	}
	k.mu.Lock()
	k.keys, k.active, k.loaded = aeads, keys[len(keys)-1].id, fi
	k.mu.Unlock()
	k.nextCheck.Store(time.Now().Add(keyCheckInterval).UnixNano())
	return nil
}

// newAEAD is AES-256-GCM with a random 12-byte nonce prepended to the
// ciphertext.
func newAEAD(secret []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(secret)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCMWithRandomNonce(block)
}

// readKeyFile opens, checks and parses the key file. It returns the keys,
// the file's info and its content.
func readKeyFile(path string) ([]fileKey, fs.FileInfo, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("load session keys: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("load session keys: %w", err)
	}
	if err := checkKeyFileMode(path, fi); err != nil {
		return nil, nil, nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("load session keys: read %s: %w", path, err)
	}
	if len(data) > maxKeyFileSize {
		return nil, nil, nil, fmt.Errorf("load session keys: key file %s is larger than %d bytes: it is not a zhiyin key file", path, maxKeyFileSize)
	}
	keys, err := parseKeyFile(data)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("load session keys: key file %s: %w", path, err)
	}
	return keys, fi, data, nil
}

// checkKeyFileMode refuses a key file that is not a regular file or that
// others than its owner and group could read, or its group could write.
func checkKeyFileMode(path string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("load session keys: %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077&^0o040 != 0 {
		return fmt.Errorf("load session keys: key file %s has mode %04o, so other users can read or change the keys: run chmod 600 %s", path, perm, path)
	}
	return nil
}

// parseKeyFile parses key file content: one `<id> <base64 std of 32
// bytes>` a line, '#' comment lines and blank lines ignored. Ids are 1 to
// 32 of [a-z0-9-] and unique; there is at least one key. Errors name the
// 1-based line.
func parseKeyFile(data []byte) ([]fileKey, error) {
	var keys []fileKey
	seen := map[string]int{}
	for i, raw := range strings.Split(string(data), "\n") {
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		n := i + 1
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("line %d: want `<id> <base64 key>`, got %d fields", n, len(fields))
		}
		id, enc := fields[0], fields[1]
		if !validKeyID(id) {
			return nil, fmt.Errorf("line %d: key id %q: use 1 to %d characters of a-z, 0-9 and '-'", n, id, maxKeyIDLen)
		}
		if prev, ok := seen[id]; ok {
			return nil, fmt.Errorf("line %d: key id %q is already used on line %d: ids must be unique", n, id, prev)
		}
		secret, err := base64.StdEncoding.Strict().DecodeString(enc)
		if err != nil {
			return nil, fmt.Errorf("line %d: key %s is not standard base64: %w", n, id, err)
		}
		if len(secret) != keySize {
			return nil, fmt.Errorf("line %d: key %s has %d bytes, want %d (AES-256)", n, id, len(secret), keySize)
		}
		seen[id] = n
		keys = append(keys, fileKey{id: id, secret: secret, line: n})
	}
	if len(keys) == 0 {
		return nil, errors.New("no key in the file: delete the file to have a new one generated (only if no database uses it), or restore it from a backup")
	}
	return keys, nil
}

// validKeyID reports whether id is 1 to 32 of [a-z0-9-].
func validKeyID(id string) bool {
	if id == "" || len(id) > maxKeyIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// formatKeyLine is one key line, with its newline.
func formatKeyLine(id string, secret []byte) string {
	return id + " " + base64.StdEncoding.EncodeToString(secret) + "\n"
}

// newKeyID returns "k" + now in UTC as yyyymmddhhmmss, with "-2", "-3"…
// appended when that id is taken.
func newKeyID(now time.Time, taken func(string) bool) string {
	base := "k" + now.UTC().Format("20060102150405")
	id := base
	for n := 2; taken(id); n++ {
		id = base + "-" + strconv.Itoa(n)
	}
	return id
}

// newSecret returns 32 random bytes.
func newSecret() []byte {
	b := make([]byte, keySize)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (it crashes the program instead)
	return b
}

// createKeyFile writes a new key file with one key unless the file exists.
// It links a complete temporary file into place, so that a concurrent
// creator never sees a partial file and exactly one creator wins.
func createKeyFile(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create session key file: %w", err)
	}
	data := keyFileHeader + formatKeyLine(newKeyID(time.Now(), func(string) bool { return false }), newSecret())
	tmp, err := writeTemp(dir, filepath.Base(path), []byte(data), keyFilePerm, nil)
	if err != nil {
		return fmt.Errorf("create session key file %s: %w", path, err)
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create session key file %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("create session key file %s: %w", path, err)
	}
	return nil
}

// AddKey appends a newly generated key to the key file at path; it becomes
// the active key of every Keyring that reloads the file (on Reload, when
// Open meets the new id in a row, or within a second by Seal's check). The file is rewritten
// atomically (temporary file and rename) keeping its mode and owner and
// its other lines. It returns the new key's id. AddKey and RetireKeys hold
// a lock on the file's directory, so two of them do not lose each other's
// change.
func AddKey(path string) (newID string, err error) {
	err = rewriteKeyFile(path, func(keys []fileKey, data []byte) ([]byte, error) {
		newID = newKeyID(time.Now(), func(id string) bool {
			for _, k := range keys {
				if k.id == id {
					return true
				}
			}
			return false
		})
		if len(data) > 0 && data[len(data)-1] != '\n' {
			data = append(data, '\n')
		}
		return append(data, formatKeyLine(newID, newSecret())...), nil
	})
	if err != nil {
		return "", fmt.Errorf("add session key: %w", err)
	}
	return newID, nil
}

// RetireKeys removes from the key file at path every key for which keep
// returns false, except the active (last) key, which is never removed. The
// caller passes the ids still in use (Store.KeyIDsInUse, after Reencrypt)
// in keep. Data sealed with a removed key can never be opened again, so
// retire a key only once no process seals with it any more: a process
// switches to a newly added key on Reload (SIGHUP) or by itself within a
// second of the file changing (Seal checks), so after AddKey wait a few
// seconds (or reload every process), then Reencrypt, then retire. It
// returns the removed ids in file order; the file is not rewritten when
// nothing is removed.
func RetireKeys(path string, keep func(id string) bool) (removed []string, err error) {
	err = rewriteKeyFile(path, func(keys []fileKey, data []byte) ([]byte, error) {
		drop := map[int]bool{}
		for _, k := range keys[:len(keys)-1] {
			if !keep(k.id) {
				drop[k.line] = true
				removed = append(removed, k.id)
			}
		}
		if len(removed) == 0 {
			return nil, nil
		}
		lines := bytes.SplitAfter(data, []byte("\n"))
		var out []byte
		for i, l := range lines {
			if !drop[i+1] {
				out = append(out, l...)
			}
		}
		return out, nil
	})
	if err != nil {
		return nil, fmt.Errorf("retire session keys: %w", err)
	}
	return removed, nil
}

// rewriteKeyFile locks the key file's directory, reads and checks the file
// and replaces it atomically with what edit returns (nothing when edit
// returns nil), keeping its mode and owner.
func rewriteKeyFile(path string, edit func(keys []fileKey, data []byte) ([]byte, error)) error {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real // replace the file, not the link to it
	}
	dir := filepath.Dir(path)
	unlock, err := lockDir(dir)
	if err != nil {
		return err
	}
	defer unlock()
	keys, fi, data, err := readKeyFile(path)
	if err != nil {
		return err
	}
	out, err := edit(keys, data)
	if err != nil || out == nil {
		return err
	}
	if _, err := parseKeyFile(out); err != nil { // never write a file LoadKeyring refuses
		return fmt.Errorf("edited key file would not load: %w", err)
	}
	tmp, err := writeTemp(dir, filepath.Base(path), out, fi.Mode().Perm(), fi)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("replace %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return nil
}

// writeTemp writes data to a new synced temporary file in dir with mode
// perm and, when owner is given, that file's owner (best effort when not
// root: a user can only give a file to itself). It returns the file's name.
func writeTemp(dir, base string, data []byte, perm fs.FileMode, owner fs.FileInfo) (name string, err error) {
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return "", err
	}
	name = f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(name)
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return "", err
	}
	if st, ok := ownerOf(owner); ok {
		if err := f.Chown(int(st.Uid), int(st.Gid)); err != nil && int(st.Uid) != os.Getuid() {
			return "", fmt.Errorf("keep the key file's owner (uid %d): %w", st.Uid, err)
		}
	}
	if _, err := f.Write(data); err != nil {
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return name, nil
}

func ownerOf(fi fs.FileInfo) (*syscall.Stat_t, bool) {
	if fi == nil {
		return nil, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return st, ok
}

// syncDir makes a rename or link in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// lockDir takes an exclusive flock on dir, blocking until it has it.
func lockDir(dir string) (unlock func(), err error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("lock key directory: %w", err)
	}
	for {
		err = syscall.Flock(int(d.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("lock key directory %s: %w", dir, err)
	}
	return func() { d.Close() }, nil
}
