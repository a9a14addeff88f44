package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// secretTag marks a node that the decoder has already resolved.
const secretTag = "!zhiyin-secret"

// Secret is a configuration value that must not be printed or logged. In the
// file it is given inline, as "${ENV_NAME}", or through a sibling key with
// the suffix _file naming a file that holds it. The zero value is unset.
type Secret struct {
	value  string
	source string
}

// NewSecret returns a secret holding value (tests and programmatic configs).
func NewSecret(value string) Secret { return Secret{value: value, source: "inline"} }

// Value returns the secret itself.
func (s Secret) Value() string { return s.value }

// IsSet reports whether a non-empty secret was given.
func (s Secret) IsSet() bool { return s.value != "" }

// Source says where the secret came from ("inline", "file PATH",
// "environment NAME"), for messages; it never contains the secret.
func (s Secret) Source() string { return s.source }

// String redacts the secret so that it cannot leak through fmt or slog.
func (s Secret) String() string {
	if !s.IsSet() {
		return ""
	}
	return "<redacted>"
}

// MarshalYAML redacts the secret, saying only where it came from.
func (s Secret) MarshalYAML() (any, error) {
	if !s.IsSet() {
		return "", nil
	}
	return "<redacted: " + s.source + ">", nil
}

// UnmarshalYAML accepts only nodes resolved by Decode; a plain yaml.Unmarshal
// into a Secret takes the literal text.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a secret must be text", n.Line)
	}
	if n.Tag == secretTag {
		src, val, _ := strings.Cut(n.Value, "\x00")
		*s = Secret{value: val, source: src}
		return nil
	}
	*s = Secret{}
	if n.Value != "" {
		*s = NewSecret(n.Value)
	}
	return nil
}

// ByteSize is a size in bytes, written in YAML as a whole number of bytes or
// with a unit: "512KiB", "1MiB", "2GiB", "10MB", "100kB".
type ByteSize int64

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"kB", 1000}, {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"TB", 1000 * 1000 * 1000 * 1000},
	{"B", 1},
}

// ParseByteSize parses "1MiB", "10MB", "4096" and the like.
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("invalid size %q: use bytes or a unit such as 512KiB, 1MiB, 2GiB", s)
	}
	v := f * float64(mult)
	if v > math.MaxInt64/2 {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return ByteSize(v), nil
}

// UnmarshalYAML parses a number of bytes or a size with a unit.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a size must be a number of bytes or text such as \"1MiB\"", n.Line)
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*b = v
	return nil
}

// MarshalYAML writes the size with the largest binary unit that divides it.
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

// String formats the size as "1MiB", "512KiB" or a plain byte count.
func (b ByteSize) String() string {
	for _, u := range []struct {
		s string
		m int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b != 0 && int64(b)%u.m == 0 {
			return fmt.Sprintf("%d%s", int64(b)/u.m, u.s)
		}
	}
	return strconv.FormatInt(int64(b), 10)
}
