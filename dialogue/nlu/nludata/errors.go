package nludata

import (
	"errors"
	"fmt"
	"strconv"
)

// ErrNoDataFiles is returned (wrapped) by Load when a folder holds no file
// with an extension it reads.
var ErrNoDataFiles = errors.New("no data files")

// maxErrors is how many errors one Parse, Load or Check reports at most.
const maxErrors = 20

// Pos is a line in a data file. Line is 1-based; 0 means the whole file.
type Pos struct {
	File string
	Line int
}

// String returns "file:line", or just the file when Line is 0.
func (p Pos) String() string {
	if p.Line <= 0 {
		return p.File
	}
	return p.File + ":" + strconv.Itoa(p.Line)
}

// Error is a problem in the data at Pos. Parse, Load and Check return it,
// or errors.Join of several; find them with errors.As.
type Error struct {
	Pos Pos
	Msg string
}

// Error returns "file:line: msg".
func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// errList collects data errors, keeping the first maxErrors-1 and counting
// the rest, so one bad file does not produce thousands of lines.
type errList struct {
	file  string // named in the "more errors" line
	errs  []error
	total int
}

func (l *errList) add(p Pos, format string, args ...any) {
	l.addErr(&Error{Pos: p, Msg: fmt.Sprintf(format, args...)})
}

func (l *errList) addErr(err error) {
	l.total++
	if len(l.errs) < maxErrors {
		l.errs = append(l.errs, err)
	}
}

// err returns nil, the only error, or errors.Join of at most maxErrors.
func (l *errList) err() error {
	switch {
	case l.total == 0:
		return nil
	case l.total == 1:
		return l.errs[0]
	case l.total <= maxErrors:
		return errors.Join(l.errs...)
	}
	shown := l.errs[:maxErrors-1]
	more := &Error{Pos: Pos{File: l.file}, Msg: fmt.Sprintf("%d more errors not shown: fix the ones above and run again", l.total-len(shown))}
	return errors.Join(append(shown[:len(shown):len(shown)], more)...)
}
