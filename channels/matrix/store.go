package matrix

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// TokenStore keeps the sync position (next_batch) across restarts. The
// adapter calls it from its sync loop only, one call at a time.
type TokenStore interface {
	// LoadSince returns the saved token, or "" when none was saved yet.
	LoadSince(ctx context.Context) (string, error)
	// SaveSince durably records token.
	SaveSince(ctx context.Context, token string) error
}

// FileTokenStore keeps the token in the file Path (written atomically:
// a temporary file, fsync, rename, fsync of the directory).
type FileTokenStore struct {
	Path string
}

var _ TokenStore = FileTokenStore{}

// LoadSince implements TokenStore; a missing file is no token.
func (s FileTokenStore) LoadSince(ctx context.Context) (string, error) {
	b, err := os.ReadFile(s.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("load matrix sync token: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// SaveSince implements TokenStore.
func (s FileTokenStore) SaveSince(ctx context.Context, token string) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("save matrix sync token: %w", err)
		}
	}()
	if s.Path == "" {
		return errors.New("no path")
	}
	dir := filepath.Dir(s.Path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(s.Path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if _, err := f.WriteString(token + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, s.Path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
