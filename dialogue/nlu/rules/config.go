package rules

import (
	"fmt"
	"maps"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // zones resolve on servers without /usr/share/zoneinfo
)

// DefaultTimeZone is the zone dates and times are resolved in when
// Config.TimeZone is empty.
const DefaultTimeZone = "Asia/Shanghai"

// Config configures an Extractor. The zero value is ready to use: every
// built-in extractor on, DefaultCarriers, DefaultOrderPatterns, Asia/Shanghai.
//
// Patterns (Carriers, OrderPatterns, Regexes) are RE2 expressions
// (package regexp) matched case-insensitively against the normalized text:
// half-width, lower-case, whitespace collapsed. If a pattern has a group
// named "value" that took part in the match, the entity is that group
// (so "中通[^0-9a-z]{0,8}(?P<value>\d{12})" yields only the number);
// otherwise it is the whole match. A match whose ends continue into ASCII
// letters or digits on either side is dropped, as \b would.
type Config struct {
	// TimeZone is the IANA zone relative dates and times are resolved in.
	TimeZone string `yaml:"time_zone"`
	// Carriers maps a carrier code (Attrs["carrier"] of tracking_no) to the
	// pattern of its tracking numbers. Entries are merged over
	// DefaultCarriers: a known code is replaced, a new code is added, and a
	// code with an empty pattern removes that default.
	Carriers map[string]string `yaml:"carriers"`
	// OrderPatterns are the patterns of order numbers. nil means
	// DefaultOrderPatterns; any other value (an empty list too) replaces them.
	OrderPatterns []string `yaml:"order_patterns"`
	// Lookups maps an entity type to its values, matched exactly after
	// normalization, the longest first (extractor "lookup").
	Lookups map[string][]string `yaml:"lookups"`
	// Synonyms maps a variant to its canonical value. Lookup hits are
	// reported with the canonical value, a variant of a value listed in
	// Lookups is found as that lookup type too, and Extractor.Canonical
	// answers for any text.
	Synonyms map[string]string `yaml:"synonyms"`
	// Regexes are extra patterns; Name is the entity type (extractor "regex").
	Regexes []NamedRegex `yaml:"regexes"`
	// Disable turns off entity types: any built-in type (see the Type
	// constants), a lookup type or a regex name, or "lookup" / "regex" for
	// all of those.
	Disable []string `yaml:"disable"`
}

// NamedRegex is an operator pattern whose matches are entities of type Name.
type NamedRegex struct {
	Name    string `yaml:"name"`
	Pattern string `yaml:"pattern"`
}

// DefaultCarriers returns a new map of the built-in carrier patterns:
//
//	SF     顺丰   SF + 10-13 digits                       SF1234567890123
//	YTO    圆通   YT + 13 digits; 10-13 digits after 圆通   YT1234567890123
//	ZTO    中通   12 or 14 digits after 中通               中通 75312345678901
//	STO    申通   12-15 digits after 申通                  申通 773012345678901
//	YUNDA  韵达   13 or 15 digits after 韵达               韵达 4312345678901
//	JD     京东   JD, optional V+letter, 11-15 digits     JDVA12345678901
//	EMS    邮政   E + letter + 9 digits + 2 letters (UPU S10);  EA123456789CN
//	              13 digits after EMS or 邮政
//	JT     极兔   JT + 13 digits                          JT1234567890123
//
// Carriers whose numbers are bare digits are only recognised after their
// name, because a bare digit run is more often an order or phone number.
func DefaultCarriers() map[string]string {
	return map[string]string{
		"SF":    `SF\d{10,13}`,
		"YTO":   `YT\d{13}|圆通[^0-9a-z]{0,8}(?P<value>\d{13}|\d{12}|\d{10})`,
		"ZTO":   `中通[^0-9a-z]{0,8}(?P<value>\d{14}|\d{12})`,
		"STO":   `申通[^0-9a-z]{0,8}(?P<value>\d{12,15})`,
		"YUNDA": `韵达[^0-9a-z]{0,8}(?P<value>\d{15}|\d{13})`,
		"JD":    `JD(?:V[A-Z])?\d{11,15}`,
		"EMS":   `E[A-Z]\d{9}[A-Z]{2}|(?:EMS|邮政)[^0-9a-z]{0,8}(?P<value>\d{13})`,
		"JT":    `JT\d{13}`,
	}
}

// DefaultOrderPatterns returns the built-in order number patterns: up to four
// letters, a digit and 9-23 more letters, digits or dashes after
// 订单/订单号/订单编号 (the entity is the number: "订单号：SO-2026-000123"),
// and a bare run of 16-20 digits (an 18-digit run that is a valid ID number
// is reported as id_card instead).
func DefaultOrderPatterns() []string {
	return []string{
		`订单(?:编号|号码|号)?[^0-9a-z]{0,4}(?P<value>[a-z]{0,4}-?\d[0-9a-z-]{8,22}[0-9a-z])`,
		`\d{16,20}`,
	}
}

// Built-in entity types.
const (
	TypePhone      = "phone_number"
	TypeLandline   = "landline"
	TypeEmail      = "email"
	TypeIDCard     = "id_card"
	TypeOrderNo    = "order_no"
	TypeTrackingNo = "tracking_no"
	TypeAmount     = "amount"
	TypeDateTime   = "datetime"
	TypeDate       = "date"
	TypeTime       = "time"
	TypeQuantity   = "quantity"
)

// Values of Entity.Extractor.
const (
	ExtractorRules  = "rules"
	ExtractorRegex  = "regex"
	ExtractorLookup = "lookup"
)

// builtinRank orders built-in types from the most specific: on equal spans
// the lower rank wins. Operator regexes and lookups come after them.
func builtinRank(typ string) int {
	switch typ {
	case TypeIDCard:
		return 0
	case TypeEmail:
		return 1
	case TypeTrackingNo:
		return 2
	case TypeOrderNo:
		return 3
	case TypePhone:
		return 4
	case TypeLandline:
		return 5
	case TypeDateTime:
		return 6
	case TypeDate:
		return 7
	case TypeTime:
		return 8
	case TypeAmount:
		return 9
	case TypeQuantity:
		return 10
	}
	return -1
}

const (
	rankRegex  = 20
	rankLookup = 21
)

// pattern is a compiled carrier, order or operator pattern.
type pattern struct {
	re        *regexp.Regexp
	value     int      // index of the "value" group, or -1
	minDigits int      // ASCII digits any match needs
	lits      []string // a match contains one of these; nil: no such strings
	typ       string   // entity type
	carrier   string   // carrier code for tracking numbers
	ext       string   // Extractor value
	rank      int
}

// New checks cfg and builds an Extractor. It returns an error wrapping
// ErrInvalidConfig that names the field for a pattern that does not
// compile, an unknown time zone, an empty lookup or synonym, or an unknown
// name in Disable. Apart from resolving the time zone (system zoneinfo,
// else the copy embedded in the binary) it does no I/O.
func New(cfg Config) (*Extractor, error) {
	tz := cfg.TimeZone
	if tz == "" {
		tz = DefaultTimeZone
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("%w: time_zone: unknown time zone %q, use an IANA name such as %q: %w", ErrInvalidConfig, tz, DefaultTimeZone, err)
	}
	e := &Extractor{loc: loc, off: map[string]bool{}, tab: newTables()}

	carriers := DefaultCarriers()
	for code, p := range cfg.Carriers {
		if strings.TrimSpace(code) == "" {
			return nil, fmt.Errorf("%w: carriers: empty carrier code, name the carrier (e.g. SF)", ErrInvalidConfig)
		}
		if p == "" {
			delete(carriers, code)
			continue
		}
		carriers[code] = p
	}
	for _, code := range slices.Sorted(maps.Keys(carriers)) {
		p, err := compilePattern(carriers[code])
		if err != nil {
			return nil, fmt.Errorf("%w: carriers[%q]: %w", ErrInvalidConfig, code, err)
		}
		p.typ, p.carrier, p.ext, p.rank = TypeTrackingNo, code, ExtractorRules, builtinRank(TypeTrackingNo)
		e.codes = append(e.codes, p)
	}

	orders := cfg.OrderPatterns
	if orders == nil {
		orders = DefaultOrderPatterns()
	}
	for i, s := range orders {
		if s == "" {
			return nil, fmt.Errorf("%w: order_patterns[%d]: empty pattern, remove the entry", ErrInvalidConfig, i)
		}
		p, err := compilePattern(s)
		if err != nil {
			return nil, fmt.Errorf("%w: order_patterns[%d]: %w", ErrInvalidConfig, i, err)
		}
		p.typ, p.ext, p.rank = TypeOrderNo, ExtractorRules, builtinRank(TypeOrderNo)
		e.codes = append(e.codes, p)
	}

	known := map[string]bool{ExtractorLookup: true, ExtractorRegex: true}
	for _, t := range []string{TypePhone, TypeLandline, TypeEmail, TypeIDCard, TypeOrderNo, TypeTrackingNo, TypeAmount, TypeDateTime, TypeDate, TypeTime, TypeQuantity} {
		known[t] = true
	}
	for i, nr := range cfg.Regexes {
		if strings.TrimSpace(nr.Name) == "" {
			return nil, fmt.Errorf("%w: regexes[%d]: name is required (it is the entity type)", ErrInvalidConfig, i)
		}
		if nr.Pattern == "" {
			return nil, fmt.Errorf("%w: regexes[%d] (%s): pattern is required", ErrInvalidConfig, i, nr.Name)
		}
		p, err := compilePattern(nr.Pattern)
		if err != nil {
			return nil, fmt.Errorf("%w: regexes[%d] (%s): %w", ErrInvalidConfig, i, nr.Name, err)
		}
		p.typ, p.ext, p.rank = nr.Name, ExtractorRegex, rankRegex
		e.codes = append(e.codes, p)
		known[nr.Name] = true
	}

	if err := e.buildLookups(cfg.Lookups, cfg.Synonyms); err != nil {
		return nil, err
	}
	for t := range cfg.Lookups {
		known[t] = true
	}

	for i, t := range cfg.Disable {
		if !known[t] {
			return nil, fmt.Errorf("%w: disable[%d]: unknown type %q, use a built-in type (%s, ...), a lookup type, a regex name, %q or %q",
				ErrInvalidConfig, i, t, TypePhone, ExtractorLookup, ExtractorRegex)
		}
		e.off[t] = true
	}
	return e, nil
}

func compilePattern(s string) (pattern, error) {
	// Compile the operator's text alone first: prefixing flags to a valid
	// expression cannot change its structure, while wrapping text in a
	// group could (an unbalanced ")(" would).
	if _, err := regexp.Compile(s); err != nil {
		return pattern{}, fmt.Errorf("pattern %q does not compile, fix the RE2 syntax: %w", s, err)
	}
	re, err := regexp.Compile("(?i)" + s)
	if err != nil {
		return pattern{}, fmt.Errorf("pattern %q does not compile, fix the RE2 syntax: %w", s, err)
	}
	tree, err := syntax.Parse("(?i)"+s, syntax.Perl)
	if err != nil {
		return pattern{}, fmt.Errorf("pattern %q does not compile, fix the RE2 syntax: %w", s, err)
	}
	tree = tree.Simplify()
	lits, _ := required(tree)
	return pattern{re: re, value: re.SubexpIndex("value"), minDigits: minDigits(tree), lits: lits}, nil
}

// required returns strings of which every match of re contains at least
// one (lower-cased, as the normalized text is), or false when there are
// none: a text with none of them cannot match.
func required(re *syntax.Regexp) ([]string, bool) {
	switch re.Op {
	case syntax.OpLiteral:
		if len(re.Rune) == 0 {
			return nil, false
		}
		return []string{strings.ToLower(string(re.Rune))}, true
	case syntax.OpCapture, syntax.OpPlus:
		return required(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min < 1 {
			return nil, false
		}
		return required(re.Sub[0])
	case syntax.OpConcat:
		// The sub-expression whose shortest required string is longest
		// filters best.
		var best []string
		score := 0
		for _, sub := range re.Sub {
			lits, ok := required(sub)
			if !ok {
				continue
			}
			short := len(lits[0])
			for _, l := range lits {
				short = min(short, len(l))
			}
			if short > score {
				best, score = lits, short
			}
		}
		return best, best != nil
	case syntax.OpAlternate:
		var all []string
		for _, sub := range re.Sub {
			lits, ok := required(sub)
			if !ok {
				return nil, false
			}
			all = append(all, lits...)
		}
		return all, true
	}
	return nil, false
}

// minDigits is the least number of ASCII digits any match of re holds. A
// text with fewer digits cannot match, which lets Extract skip patterns
// for the many messages without long numbers.
func minDigits(re *syntax.Regexp) int {
	const most = 1 << 20
	switch re.Op {
	case syntax.OpLiteral:
		n := 0
		for _, r := range re.Rune {
			if isDigit(r) {
				n++
			}
		}
		return n
	case syntax.OpCharClass:
		if len(re.Rune) == 0 {
			return 0
		}
		for i := 0; i+1 < len(re.Rune); i += 2 {
			if re.Rune[i] < '0' || re.Rune[i+1] > '9' {
				return 0
			}
		}
		return 1
	case syntax.OpCapture, syntax.OpPlus:
		return minDigits(re.Sub[0])
	case syntax.OpRepeat:
		return min(re.Min*minDigits(re.Sub[0]), most)
	case syntax.OpConcat:
		n := 0
		for _, sub := range re.Sub {
			n = min(n+minDigits(sub), most)
		}
		return n
	case syntax.OpAlternate:
		n := most
		for _, sub := range re.Sub {
			n = min(n, minDigits(sub))
		}
		return n
	}
	return 0
}
