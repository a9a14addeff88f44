package domain

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// Load reads the domain folder dir: every .yml and .yaml file under it,
// recursively in path order, skipping names that start with ".". Positions
// name the files as dir joined with their path inside it. The domain name
// defaults to the folder's base name.
//
// Every problem in the files is an *Error "file:line: message: what to do",
// in file and line order; at most 20 come back, joined with errors.Join.
// References between files (an intent's reply, a form's slots...) are
// checked only once every file reads without error. A folder that cannot be
// read gives a wrapped I/O error; one without .yml files ErrNoDomainFiles.
// Load reads the files and blocks until done; the caller owns the result.
func Load(dir string) (*Domain, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("load domain: %w: pass the domain folder", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("load domain: %s is a file: pass the folder that holds it (every .yml file in it is read)", dir)
	}
	name := filepath.Base(dir)
	if abs, err := filepath.Abs(dir); err == nil {
		name = filepath.Base(abs)
	}
	return load(os.DirFS(dir), dir, name, func(rel string) string {
		return filepath.Join(dir, filepath.FromSlash(rel))
	})
}

// LoadFS is Load over fsys, whose root is the domain folder (for example
// the embedded builtin domain). source is the folder's name in positions
// ("builtin/domain.yml:3") and in Domain.Source; the domain name defaults to
// its base name. LoadFS blocks until fsys is read; the caller owns the
// result.
func LoadFS(fsys fs.FS, source string) (*Domain, error) {
	name := path.Base(source)
	if source == "" || name == "." || name == "/" {
		name = "domain"
	}
	return load(fsys, source, name, func(rel string) string {
		if source == "" {
			return rel
		}
		return path.Join(source, rel)
	})
}

func load(fsys fs.FS, source, name string, display func(rel string) string) (*Domain, error) {
	files, err := domainFiles(fsys)
	if err != nil {
		return nil, fmt.Errorf("load domain %s: %w", source, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("load domain %s: %w: the folder needs .yml or .yaml files", source, ErrNoDomainFiles)
	}
	l := &loader{
		d: &Domain{
			Name:      name,
			Source:    source,
			Intents:   map[string]*Intent{},
			Slots:     map[string]*Slot{},
			Responses: map[string]*Response{},
			Forms:     map[string]*Form{},
		},
		errs:     &errList{source: source},
		set:      map[string]Pos{},
		faqIDs:   map[string]Pos{},
		entities: map[string]bool{},
	}
	h := sha256.New()
	for _, rel := range files {
		data, err := fs.ReadFile(fsys, rel)
		if err != nil {
			return nil, fmt.Errorf("load domain %s: %w", source, err)
		}
		// Name and length first, so no two file sets hash alike.
		h.Write([]byte(rel))
		h.Write([]byte{0})
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(data))))
		h.Write(data)
		l.parseFile(display(rel), data)
	}
	l.d.Hash = hex.EncodeToString(h.Sum(nil))
	if l.errs.total == 0 {
		// References are checked only when every file was read whole:
		// otherwise a name declared in a broken part looks unknown.
		l.check()
	}
	if err := l.errs.err(); err != nil {
		return nil, err
	}
	l.defaults()
	return l.d, nil
}

// domainFiles lists the .yml and .yaml files in fsys, sorted by path,
// skipping names that start with "." and following links to files.
func domainFiles(fsys fs.FS) ([]string, error) {
	var files []string
	err := fs.WalkDir(fsys, ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != "." && strings.HasPrefix(e.Name(), ".") {
			if e.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if e.IsDir() {
			return nil
		}
		switch strings.ToLower(path.Ext(p)) {
		case ".yml", ".yaml":
		default:
			return nil
		}
		if !e.Type().IsRegular() { // a link: read it when it leads to a file
			if fi, err := fs.Stat(fsys, p); err != nil || !fi.Mode().IsRegular() {
				return nil
			}
		}
		files = append(files, p)
		return nil
	})
	slices.Sort(files)
	return files, err
}

// parseFile reads one file's documents into the domain.
func (l *loader) parseFile(file string, data []byte) {
	if n := invalidUTF8Line(data); n > 0 {
		l.errs.add(Pos{File: file, Line: n}, "invalid UTF-8: save the file as UTF-8")
		return
	}
	docs, err := decodeDocs(data)
	if err != nil {
		line, msg := syntaxLine(data, err)
		l.errs.add(Pos{File: file, Line: line}, "invalid YAML: %s: check the indentation, quotes and the space after \":\" on this line or the one before", msg)
		return
	}
	p := &parser{l: l, file: file, budget: 100_000 + 16*len(data)}
	for _, doc := range docs {
		p.document(doc)
	}
}
