package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// adoptOwner gives the files SQLite and the store keep beside the database
// (-wal, -shm, .lock), and the database itself, the owner of the database
// file — or of its directory when the file is missing or owned by root —
// when this process runs as root. Why: an operator running `zhiyin doctor`,
// `backup` or `apikey` as root while the daemon (user zhiyin, owner of its
// StateDirectory) is stopped makes SQLite create -wal/-shm as root — even a
// read-only connection does — and the daemon can then no longer open its
// database. As any other user it does nothing.
func adoptOwner(dbPath string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	ref, err := os.Stat(dbPath)
	if st, ok := statT(ref); err != nil || !ok || st.Uid == 0 {
		if ref, err = os.Stat(filepath.Dir(dbPath)); err != nil {
			return err
		}
	}
	want, ok := statT(ref)
	if !ok {
		return nil
	}
	var errs []error
	for _, suffix := range []string{"", "-wal", "-shm", lockSuffix} {
		name := dbPath + suffix
		fi, err := os.Lstat(name)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		st, ok := statT(fi)
		if !ok || (st.Uid == want.Uid && st.Gid == want.Gid) {
			continue
		}
		if err := os.Chown(name, int(want.Uid), int(want.Gid)); err != nil {
			errs = append(errs, fmt.Errorf("give %s the owner of its directory: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// statT returns the owner information of fi.
func statT(fi os.FileInfo) (*syscall.Stat_t, bool) {
	if fi == nil {
		return nil, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return st, ok
}
