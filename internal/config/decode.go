package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// DecodeOptions change how Decode reads a file.
type DecodeOptions struct {
	// BaseDir resolves relative *_file paths. Empty means the directory of
	// the file name given to Decode, or the working directory.
	BaseDir string
	// LookupEnv replaces os.LookupEnv for "${NAME}" secrets (tests).
	LookupEnv func(string) (string, bool)
	// ReadFile replaces os.ReadFile for *_file secrets (tests).
	ReadFile func(string) ([]byte, error)
	// Adjust, when set, runs after decoding and before validation: command
	// line flags that replace file values are validated as the result.
	Adjust func()
}

// Decode decodes YAML data strictly into dst, a pointer to a struct already
// holding the defaults, then validates it. name is used in messages (usually
// the file's path). The returned error is Errors when the content is at
// fault. Decode reads secret files and the environment but does no other I/O.
func Decode(name string, data []byte, dst any, opts DecodeOptions) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("config: Decode needs a pointer to a struct, got %T", dst)
	}
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	if opts.ReadFile == nil {
		opts.ReadFile = os.ReadFile
	}
	if opts.BaseDir == "" && name != "" {
		opts.BaseDir = filepath.Dir(name)
	}
	d := &decoder{file: name, opts: opts, lines: map[string]int{}}

	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return Errors{d.syntaxError(err)}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 { // empty file: defaults stand
		return d.adjustAndValidate(rv)
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return d.adjustAndValidate(rv)
	}
	if root.Kind != yaml.MappingNode {
		return Errors{{File: name, Line: root.Line, Msg: "the top level must be a mapping of sections (server:, storage:, …)"}}
	}
	d.walk(root, rv.Elem().Type(), "")
	if len(d.errs) > 0 {
		return d.sorted()
	}
	if err := root.Decode(dst); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, msg := range te.Errors {
				d.errs = append(d.errs, d.typeError(msg))
			}
			return d.sorted()
		}
		// A type's own UnmarshalYAML failed; it says "line N: …".
		if m := lineMsgRe.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			return Errors{{File: name, Line: line, Path: d.pathAtLine(line), Msg: m[2]}}
		}
		return Errors{{File: name, Msg: err.Error()}}
	}
	return d.adjustAndValidate(rv)
}

func (d *decoder) adjustAndValidate(rv reflect.Value) error {
	if d.opts.Adjust != nil {
		d.opts.Adjust()
	}
	return d.validate(rv)
}

type decoder struct {
	file  string
	opts  DecodeOptions
	lines map[string]int // field path → line of its key
	errs  []FieldError
}

func (d *decoder) errorf(line int, path, format string, args ...any) {
	d.errs = append(d.errs, FieldError{File: d.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) sorted() Errors {
	out := Errors(d.errs)
	sort.SliceStable(out, func(i, j int) bool {
		li, lj := out[i].Line, out[j].Line
		if li == 0 || lj == 0 {
			return li != 0 && lj == 0 // errors without a line go last
		}
		return li < lj
	})
	return out
}

var yamlLineRe = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (d *decoder) syntaxError(err error) FieldError {
	msg := err.Error()
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return FieldError{File: d.file, Line: line, Msg: "invalid YAML: " + m[2]}
	}
	return FieldError{File: d.file, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

var lineMsgRe = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

var typeErrRe = regexp.MustCompile(`^line (\d+): cannot unmarshal !!(\w+) ` + "`" + `?(.*?)` + "`" + `? into (.*)$`)

func (d *decoder) typeError(msg string) FieldError {
	m := typeErrRe.FindStringSubmatch(msg)
	if m == nil {
		if m := lineMsgRe.FindStringSubmatch(msg); m != nil {
			line, _ := strconv.Atoi(m[1])
			return FieldError{File: d.file, Line: line, Path: d.pathAtLine(line), Msg: m[2]}
		}
		return FieldError{File: d.file, Msg: msg}
	}
	line, _ := strconv.Atoi(m[1])
	path := d.pathAtLine(line)
	return FieldError{File: d.file, Line: line, Path: path,
		Msg: fmt.Sprintf("cannot use %s %q as %s", yamlKind(m[2]), m[3], goKind(m[4]))}
}

// pathAtLine finds the deepest recorded key on a line.
func (d *decoder) pathAtLine(line int) string {
	best := ""
	for p, l := range d.lines {
		if l == line && len(p) > len(best) {
			best = p
		}
	}
	return best
}

func yamlKind(tag string) string {
	switch tag {
	case "str":
		return "text"
	case "int", "float":
		return "number"
	case "bool":
		return "boolean"
	case "seq":
		return "a list"
	case "map":
		return "a mapping"
	}
	return tag
}

func goKind(t string) string {
	switch {
	case t == "time.Duration":
		return `a duration such as "30s" or "5m"`
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "a whole number"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case t == "bool":
		return "true or false"
	case t == "string":
		return "text"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["):
		return "a mapping"
	}
	return t
}

var (
	secretType      = reflect.TypeOf(Secret{})
	unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
)

// walk checks node against t: unknown keys, secrets, and the line of every
// key. It rewrites secret nodes in place to their resolved form.
func (d *decoder) walk(n *yaml.Node, t reflect.Type, path string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if t == secretType {
		d.resolveSecret(n, path, "")
		return
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return // the type decodes itself
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
				return
			}
			d.errorf(n.Line, path, "must be a mapping of keys (%s)", strings.Join(knownKeys(t), ", "))
			return
		}
		fields := structFields(t)
		seen := map[string]int{}
		var keep []*yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := k.Value
			p := join(path, key)
			if l, dup := seen[key]; dup {
				d.errorf(k.Line, p, "duplicate key (first set on line %d)", l)
				continue
			}
			if f, ok := fields[key]; ok {
				d.lines[p] = k.Line
				seen[key] = k.Line
				d.walk(v, f.Type, p)
				keep = append(keep, k, v)
				continue
			}
			if base, ok := strings.CutSuffix(key, "_file"); ok {
				if f, ok := fields[base]; ok && f.Type == secretType {
					bp := join(path, base)
					if l, dup := seen[base]; dup {
						d.errorf(k.Line, bp, "set either %s (line %d) or %s, not both", base, l, key)
						continue
					}
					seen[base] = k.Line
					d.lines[bp] = k.Line
					d.resolveSecret(v, bp, key)
					k.Value = base // decode the resolved value into the field
					keep = append(keep, k, v)
					continue
				}
			}
			d.errorf(k.Line, p, "unknown key; known keys here: %s", strings.Join(knownKeys(t), ", "))
		}
		n.Content = keep
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return // a type error the decoder reports with its line
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			if l, dup := d.lines[p]; dup {
				d.errorf(k.Line, p, "duplicate key (first set on line %d)", l)
				continue
			}
			d.lines[p] = k.Line
			d.walk(v, t.Elem(), p)
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, v := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			d.lines[p] = v.Line
			d.walk(v, t.Elem(), p)
		}
	}
}

var envRefRe = regexp.MustCompile(`^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$`)

// resolveSecret replaces a secret's node by a scalar holding the secret,
// tagged so that Secret.UnmarshalYAML knows where it came from. fileKey is
// the x_file key when the secret was given as a file.
func (d *decoder) resolveSecret(n *yaml.Node, path, fileKey string) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n.Line, path, "must be text (the secret, \"${ENV_NAME}\", or use %s_file: PATH)", lastElem(path))
		return
	}
	if n.Tag == "!!null" || n.Value == "" {
		n.Value, n.Tag, n.Style = "", "!!str", 0
		return
	}
	var value, source string
	switch {
	case fileKey != "":
		p := n.Value
		if !filepath.IsAbs(p) && d.opts.BaseDir != "" {
			p = filepath.Join(d.opts.BaseDir, p)
		}
		b, err := d.opts.ReadFile(p)
		if err != nil {
			d.errorf(n.Line, path, "cannot read %s %q: %v", fileKey, p, unwrapPathError(err))
			return
		}
		value = strings.TrimRight(string(b), "\r\n")
		if value == "" {
			d.errorf(n.Line, path, "%s %q is empty", fileKey, p)
			return
		}
		source = "file " + p
	default:
		if m := envRefRe.FindStringSubmatch(n.Value); m != nil {
			v, ok := d.opts.LookupEnv(m[1])
			if !ok || v == "" {
				d.errorf(n.Line, path, "environment variable %s is not set (set it, e.g. in the unit's EnvironmentFile=)", m[1])
				return
			}
			value, source = v, "environment "+m[1]
		} else {
			value, source = n.Value, "inline"
		}
	}
	n.Kind, n.Tag, n.Style, n.Content = yaml.ScalarNode, secretTag, 0, nil
	n.Value = source + "\x00" + value
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func lastElem(path string) string {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[i+1:]
	}
	return path
}

type fieldInfo struct {
	Type  reflect.Type
	Index []int
}

// structFields maps YAML keys to fields, following yaml.v3's tag rules
// (name, "-", ",inline").
func structFields(t reflect.Type) map[string]fieldInfo {
	out := map[string]fieldInfo{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(opts, "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range structFields(ft) {
					out[k] = fieldInfo{Type: v.Type, Index: append([]int{i}, v.Index...)}
				}
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = fieldInfo{Type: f.Type, Index: []int{i}}
	}
	return out
}

func knownKeys(t reflect.Type) []string {
	fields := structFields(t)
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// validate runs Validate on every Validatable struct in v, depth first in
// field order, and attaches file lines to the errors.
func (d *decoder) validate(v reflect.Value) error {
	val := NewValidator("")
	validateValue(v, val, "")
	if len(*val.errs) == 0 {
		return nil
	}
	for _, e := range *val.errs {
		e.File = d.file
		e.Line = d.lineOf(e.Path)
		d.errs = append(d.errs, e)
	}
	return d.sorted()
}

// lineOf finds the line of path or, failing that, of its nearest parent that
// is in the file.
func (d *decoder) lineOf(path string) int {
	for p := path; p != ""; {
		if l, ok := d.lines[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

var validatableType = reflect.TypeOf((*Validatable)(nil)).Elem()

// Validate runs every Validate method in the struct pointed to by dst, as
// Decode does, without decoding anything. It is how built-in defaults are
// checked.
func Validate(dst any) error {
	d := &decoder{lines: map[string]int{}}
	return d.validate(reflect.ValueOf(dst))
}

func validateValue(v reflect.Value, val *Validator, path string) {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == secretType {
			return
		}
		if v.CanAddr() && v.Addr().Type().Implements(validatableType) {
			v.Addr().Interface().(Validatable).Validate(val.Sub(path))
		} else if v.Type().Implements(validatableType) {
			v.Interface().(Validatable).Validate(val.Sub(path))
		}
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			sf := t.Field(i)
			if !sf.IsExported() || sf.Tag.Get("yaml") == "-" {
				continue
			}
			name, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
			if strings.Contains(opts, "inline") {
				validateValue(v.Field(i), val, path)
				continue
			}
			if name == "" {
				name = strings.ToLower(sf.Name)
			}
			validateValue(v.Field(i), val, join(path, name))
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			validateValue(v.Index(i), val, fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Map:
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
		for _, k := range keys {
			// Map values are not addressable: copy into a new value so that
			// pointer-receiver Validate methods run too.
			cp := reflect.New(v.Type().Elem()).Elem()
			cp.Set(v.MapIndex(k))
			validateValue(cp, val, join(path, fmt.Sprint(k)))
		}
	}
}
