package domain

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// ErrNoDomainFiles is returned (wrapped) by Load and LoadFS when the folder
// holds no .yml or .yaml file.
var ErrNoDomainFiles = errors.New("no domain files")

// maxErrors is how many errors one Load, LoadFS or CheckSkills reports.
const maxErrors = 20

// keepErrors bounds the errors kept before sorting, so a file with thousands
// of bad lines costs little memory; the rest are only counted.
const keepErrors = 1000

// Pos is a line in a domain file. Line is 1-based; 0 means the whole file.
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

func comparePos(a, b Pos) int {
	return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line))
}

// Error is a problem in the domain at Pos. Load, LoadFS and CheckSkills
// return it, or errors.Join of several; find them with errors.As.
type Error struct {
	Pos Pos
	Msg string
}

// Error returns "file:line: msg".
func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// errList collects errors; err sorts them by position and returns at most
// maxErrors.
type errList struct {
	source string // named in the "more errors" line
	errs   []*Error
	total  int
}

func (l *errList) add(p Pos, format string, args ...any) {
	l.total++
	if len(l.errs) < keepErrors {
		l.errs = append(l.errs, &Error{Pos: p, Msg: fmt.Sprintf(format, args...)})
	}
}

// err returns nil, the only error, or errors.Join of at most maxErrors in
// file and line order.
func (l *errList) err() error {
	if l.total == 0 {
		return nil
	}
	slices.SortStableFunc(l.errs, func(a, b *Error) int { return comparePos(a.Pos, b.Pos) })
	if l.total == 1 {
		return l.errs[0]
	}
	var out []error
	for _, e := range l.errs {
		if len(out) == maxErrors-1 && l.total > maxErrors {
			break
		}
		out = append(out, e)
	}
	if l.total > maxErrors {
		out = append(out, &Error{Pos: Pos{File: l.source}, Msg: fmt.Sprintf("%d more errors not shown: fix the ones above and load again", l.total-len(out))})
	}
	return errors.Join(out...)
}
