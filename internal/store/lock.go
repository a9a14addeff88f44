package store

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// lockSuffix names the lock file next to the database: <path>.lock.
const lockSuffix = ".lock"

// fileLock is a held flock(2) on <db>.lock. flock locks belong to the open
// file description, so a second lock attempt in the same process conflicts
// too, and the kernel drops the lock when the holder dies (even by SIGKILL).
type fileLock struct {
	f *os.File
}

// acquireLock takes a non-blocking exclusive flock on dbPath+".lock" and
// writes the pid into it. When another process holds it, it returns a
// *LockedError naming that pid.
func acquireLock(dbPath string) (*fileLock, error) {
	name := dbPath + lockSuffix
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &LockedError{Path: dbPath, PID: readPID(f)}
		}
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	pid := []byte(strconv.Itoa(os.Getpid()) + "\n")
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, fmt.Errorf("write lock file %s: %w", name, err)
	}
	if _, err := f.WriteAt(pid, 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("write lock file %s: %w", name, err)
	}
	return &fileLock{f: f}, nil
}

// readPID reads the pid the holder wrote; 0 when it is not there (yet).
func readPID(f *os.File) int {
	buf := make([]byte, 32)
	n, _ := f.ReadAt(buf, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// release clears the pid and drops the lock. Nil-safe and idempotent.
func (l *fileLock) release() error {
	if l == nil || l.f == nil {
		return nil
	}
	f := l.f
	l.f = nil
	// Clear the pid while still holding the lock so that nobody reads a
	// stale one; the file itself stays (removing it would race with a
	// process that has it open and is about to lock it).
	terr := f.Truncate(0)
	cerr := f.Close() // closing the last descriptor drops the flock
	if cerr != nil {
		return fmt.Errorf("release lock: %w", cerr)
	}
	if terr != nil {
		return fmt.Errorf("release lock: %w", terr)
	}
	return nil
}
