package config

import (
	"fmt"
	"strings"
)

// FieldError is one problem in a configuration: where it is and what is wrong.
type FieldError struct {
	File string // file name as given to Decode; empty for built-in defaults
	Line int    // 1-based line of the key, 0 when the key is not in the file
	Path string // dotted field path, e.g. "server.listen"
	Msg  string // what is wrong, lowercase, says what to do where it can
}

// Error formats the error as "FILE:LINE: path: message", leaving out the
// parts that are unknown.
func (e FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one configuration, in file order where
// lines are known. Decode returns it when the configuration is invalid.
type Errors []FieldError

// Error joins the errors, one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Validator collects validation errors under a field path prefix. The zero
// value is not usable; Decode passes one to every Validate method, and tests
// may create one with NewValidator. Not safe for concurrent use.
type Validator struct {
	prefix string
	errs   *[]FieldError
}

// NewValidator returns an empty validator rooted at path prefix ("" for the
// root).
func NewValidator(prefix string) *Validator {
	return &Validator{prefix: prefix, errs: new([]FieldError)}
}

// Errorf records a problem with field (relative to the validator's prefix;
// "" means the prefix itself).
func (v *Validator) Errorf(field, format string, args ...any) {
	*v.errs = append(*v.errs, FieldError{Path: join(v.prefix, field), Msg: fmt.Sprintf(format, args...)})
}

// Sub returns a validator for a nested field that records into the same list.
func (v *Validator) Sub(field string) *Validator {
	return &Validator{prefix: join(v.prefix, field), errs: v.errs}
}

// Path returns the full path of field under this validator.
func (v *Validator) Path(field string) string { return join(v.prefix, field) }

// Err returns the recorded errors as Errors, or nil when there are none.
func (v *Validator) Err() error {
	if len(*v.errs) == 0 {
		return nil
	}
	return Errors(append([]FieldError(nil), *v.errs...))
}

func join(prefix, field string) string {
	switch {
	case prefix == "":
		return field
	case field == "":
		return prefix
	case strings.HasPrefix(field, "["):
		return prefix + field
	default:
		return prefix + "." + field
	}
}

// Validatable is implemented by configuration sections. Validate records
// every problem it finds on v (it does not stop at the first) and must not do
// I/O beyond cheap local checks such as parsing a key file that was already
// read.
type Validatable interface {
	Validate(v *Validator)
}
