package tts

import (
	"bufio"
	"container/list"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/zhiyin/zhiyin/asr/audio"
)

// Clip is a recorded prompt: mono samples in [-1,1] at Rate. Clips come from
// a shared cache: callers must not modify Samples.
type Clip struct {
	Samples []float32
	Rate    int
}

// Duration is the clip's length.
func (c *Clip) Duration() time.Duration {
	if c.Rate <= 0 {
		return 0
	}
	return time.Duration(len(c.Samples)) * time.Second / time.Duration(c.Rate)
}

// DefaultPromptCache is the bytes of decoded prompts Prompts keeps (about
// 8 minutes of 16 kHz audio).
const DefaultPromptCache = 32 << 20

// maxPromptFile refuses recordings larger than this (a 10-minute 48 kHz
// stereo 16-bit WAV is 115 MB; a prompt is seconds long).
const maxPromptFile = 64 << 20

// Prompts are recorded replies: DIR/<domain>/<response>.wav, with
// DIR/<response>.wav as the fallback for any domain. Files are read on
// first use and kept decoded in a cache bounded in bytes (least recently
// used first out); a file changed on disk is read again. Safe for
// concurrent use.
type Prompts struct {
	dir string
	max int64
	log *slog.Logger

	mu    sync.Mutex
	size  int64
	lru   *list.List // of *promptEntry, most recent first
	byKey map[string]*list.Element
	bad   map[string]string // path → error already logged
}

type promptEntry struct {
	path  string
	mod   time.Time
	fsize int64
	clip  *Clip
	bytes int64
}

// NewPrompts returns the prompts under dir, caching up to cacheBytes of
// decoded audio (0 or less: DefaultPromptCache). dir "" has no prompts. It
// does no I/O; log receives a warning per unreadable file (nil: discard).
func NewPrompts(dir string, cacheBytes int64, log *slog.Logger) *Prompts {
	if cacheBytes <= 0 {
		cacheBytes = DefaultPromptCache
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Prompts{dir: dir, max: cacheBytes, log: log, lru: list.New(), byKey: map[string]*list.Element{}, bad: map[string]string{}}
}

// Dir returns the prompts folder.
func (p *Prompts) Dir() string { return p.dir }

// validName accepts a plain file name: letters (any script), digits, and
// - _ . (not leading), at most 128 bytes.
func validName(s string) bool {
	if s == "" || len(s) > 128 || s[0] == '.' || s[0] == '-' {
		return false
	}
	for _, r := range s {
		switch {
		case r == '-' || r == '_' || r == '.':
		case r >= '0' && r <= '9', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r > 0x7f && r != 0xFFFD && !isSpaceOrControl(r):
		default:
			return false
		}
	}
	return !strings.Contains(s, "..")
}

func isSpaceOrControl(r rune) bool {
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029 || r == 0x3000 || r == 0xa0
}

// Load returns the prompt for response in domain (domain "" looks only at
// the fallback DIR/<response>.wav). Errors wrap ErrBadName for a name that
// is not a plain file name, ErrNoPrompt when no file exists, ErrBadPrompt
// when the file is not a WAV asr/audio reads (the message names it). It
// reads the file on first use and when it changed.
func (p *Prompts) Load(domain, response string) (*Clip, error) {
	if p == nil || p.dir == "" {
		return nil, ErrNoPrompt
	}
	if !validName(response) {
		return nil, fmt.Errorf("%w: response %q", ErrBadName, response)
	}
	if domain != "" && !validName(domain) {
		return nil, fmt.Errorf("%w: domain %q", ErrBadName, domain)
	}
	var paths []string
	if domain != "" {
		paths = append(paths, filepath.Join(p.dir, domain, response+".wav"))
	}
	paths = append(paths, filepath.Join(p.dir, response+".wav"))
	for _, path := range paths {
		st, err := os.Stat(path)
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		return p.load(path, st)
	}
	return nil, ErrNoPrompt
}

// Lookup is Load for callers that only care whether a prompt plays: an
// unreadable file is logged (once per file and version) and reported absent.
func (p *Prompts) Lookup(domain, response string) (*Clip, bool) {
	c, err := p.Load(domain, response)
	if err != nil {
		if errors.Is(err, ErrBadPrompt) {
			p.warn(err)
		}
		return nil, false
	}
	return c, true
}

func (p *Prompts) warn(err error) {
	msg := err.Error()
	p.mu.Lock()
	seen := p.bad[msg] != ""
	if !seen && len(p.bad) < 1024 {
		p.bad[msg] = msg
	}
	p.mu.Unlock()
	if !seen {
		p.log.Warn("recorded prompt unreadable; the reply is synthesised instead", "err", err)
	}
}

func (p *Prompts) load(path string, st fs.FileInfo) (*Clip, error) {
	p.mu.Lock()
	if el, ok := p.byKey[path]; ok {
		e := el.Value.(*promptEntry)
		if e.mod.Equal(st.ModTime()) && e.fsize == st.Size() {
			p.lru.MoveToFront(el)
			p.mu.Unlock()
			return e.clip, nil
		}
		p.remove(el)
	}
	p.mu.Unlock()

	rel, _ := filepath.Rel(p.dir, path)
	if st.Size() > maxPromptFile {
		return nil, fmt.Errorf("%w: %s is %d bytes; a prompt must be under %d MiB", ErrBadPrompt, rel, st.Size(), maxPromptFile>>20)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadPrompt, rel, err)
	}
	defer f.Close()
	r, err := audio.NewWAVReader(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v (record prompts as WAV, e.g. 16-bit PCM mono: sox in.mp3 -c 1 -b 16 %s)", ErrBadPrompt, rel, err, filepath.Base(path))
	}
	samples, err := audio.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadPrompt, rel, err)
	}
	if len(samples) == 0 {
		return nil, fmt.Errorf("%w: %s holds no audio", ErrBadPrompt, rel)
	}
	clip := &Clip{Samples: samples, Rate: r.Format().SampleRate}
	e := &promptEntry{path: path, mod: st.ModTime(), fsize: st.Size(), clip: clip, bytes: int64(len(samples)) * 4}
	if e.bytes > p.max {
		return clip, nil // too big to cache: read every time
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if el, ok := p.byKey[path]; ok {
		p.remove(el) // loaded concurrently
	}
	p.byKey[path] = p.lru.PushFront(e)
	p.size += e.bytes
	for p.size > p.max {
		p.remove(p.lru.Back())
	}
	return clip, nil
}

// remove drops a cache entry; p.mu is held.
func (p *Prompts) remove(el *list.Element) {
	e := p.lru.Remove(el).(*promptEntry)
	delete(p.byKey, e.path)
	p.size -= e.bytes
}

// Check reads every prompt under the folder and returns one line per
// problem (an unreadable file, a name Load would refuse), for `zhiyin
// doctor`; a missing folder is a problem only when it is set. It reads
// every file.
func (p *Prompts) Check() []string {
	if p == nil || p.dir == "" {
		return nil
	}
	st, err := os.Stat(p.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // no recordings: replies are synthesised
	}
	if err != nil || !st.IsDir() {
		return []string{fmt.Sprintf("tts.prompts: %s is not a readable folder: %v", p.dir, err)}
	}
	var probs []string
	_ = filepath.WalkDir(p.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			probs = append(probs, fmt.Sprintf("prompts: %v", err))
			return nil
		}
		rel, _ := filepath.Rel(p.dir, path)
		depth := strings.Count(rel, string(filepath.Separator))
		if d.IsDir() {
			if path != p.dir && (depth > 0 || !validName(d.Name())) {
				probs = append(probs, fmt.Sprintf("prompts: %s: not used (DIR/<domain>/<response>.wav, names of letters, digits, - _ .)", rel))
				return filepath.SkipDir
			}
			return nil
		}
		name, ok := strings.CutSuffix(d.Name(), ".wav")
		if !ok || !validName(name) {
			probs = append(probs, fmt.Sprintf("prompts: %s: not used (prompts are <response>.wav)", rel))
			return nil
		}
		domain := ""
		if depth == 1 {
			domain = filepath.Dir(rel)
		}
		if _, err := p.Load(domain, name); err != nil && !errors.Is(err, ErrNoPrompt) {
			probs = append(probs, err.Error())
		}
		return nil
	})
	sort.Strings(probs)
	return probs
}
