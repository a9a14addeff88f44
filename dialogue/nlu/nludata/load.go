package nludata

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// readExts are the extensions Load reads in a folder.
const readExts = ".yml, .yaml, .jsonl and .json (JSON Lines)"

type format int

const (
	formatNone format = iota
	formatYAML
	formatJSONL
)

func formatOf(file string) format {
	switch strings.ToLower(filepath.Ext(file)) {
	case ".yml", ".yaml":
		return formatYAML
	case ".jsonl", ".json":
		return formatJSONL
	}
	return formatNone
}

// Parse reads one file's bytes; the extension picks the format (.yml/.yaml:
// Rasa YAML, .jsonl/.json: JSON Lines) and file is used in positions. It
// checks everything one file can show but not what needs all files (call
// Check for that, or use Load). On error the Data is nil and the error is an
// *Error or errors.Join of at most 20. Parse does no I/O and is safe for
// concurrent use; the caller owns the result.
func Parse(file string, data []byte) (*Data, error) {
	errs := &errList{file: file}
	d := parseInto(file, data, errs)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return d, nil
}

func parseInto(file string, data []byte, errs *errList) *Data {
	f := formatOf(file)
	if f == formatNone {
		errs.add(Pos{File: file}, "unknown data file extension %q: use %s", filepath.Ext(file), readExts)
		return nil
	}
	if n := invalidUTF8Line(data); n > 0 {
		errs.add(Pos{File: file, Line: n}, "invalid UTF-8: save the file as UTF-8")
		return nil
	}
	d := newData(file)
	if f == formatYAML {
		parseYAML(file, data, d, errs)
	} else {
		parseJSONL(file, data, d, errs)
	}
	return d
}

// Load reads a data file, or every .yml, .yaml, .jsonl and .json file under
// a folder (recursively, in path order, skipping names that start with "."),
// merges them and runs Check. Errors name file and line; at most 20 are
// returned. Load reads the files and blocks until done; the caller owns the
// result.
func Load(path string) (*Data, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load nlu data: %w: pass a data file or folder", err)
	}
	files := []string{path}
	if fi.IsDir() {
		files, err = dataFiles(path)
		if err != nil {
			return nil, fmt.Errorf("load nlu data: %w", err)
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("load nlu data from %s: %w: the folder needs %s files", path, ErrNoDataFiles, readExts)
		}
	}
	errs := &errList{file: path}
	d := &Data{Synonyms: map[string]string{}, Lookups: map[string][]string{}}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			errs.addErr(fmt.Errorf("load nlu data: %w", err))
			continue
		}
		if fd := parseInto(f, b, errs); errs.total == 0 {
			d.Merge(fd)
		}
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	if err := d.Check(); err != nil {
		return nil, err
	}
	return d, nil
}

// dataFiles lists the data files under dir, sorted by path.
func dataFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir && strings.HasPrefix(e.Name(), ".") {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if e.IsDir() || formatOf(p) == formatNone {
			return nil
		}
		if !e.Type().IsRegular() { // a link: read it when it leads to a file
			if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
				return nil
			}
		}
		files = append(files, p)
		return nil
	})
	slices.Sort(files)
	return files, err
}
