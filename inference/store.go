package inference

import (
	"archive/tar"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/zhiyin/zhiyin/inference/onnxpb"
)

// SystemModelDir is where the packages install models (the Silero VAD).
const SystemModelDir = "/usr/share/zhiyin/models"

// Slots of a model in a models folder: the serving version is the folder
// (or link) NAME; NAME.candidate is a version waiting for shadow evaluation
// and promotion; NAME.previous is what the last promotion replaced.
const (
	SlotServing   = ""
	SlotCandidate = "candidate"
	SlotPrevious  = "previous"
)

// storeSubdir holds the installed model folders, named NAME@VERSION-SUM;
// NAME, NAME.candidate and NAME.previous are symbolic links into it, so that
// installing, promoting and rolling back are atomic renames.
const storeSubdir = ".store"

// SearchDirs returns the folders searched for models, in order: the
// writable <dataDir>/models (where `zhiyin models install` puts models; it
// is also the Store's folder), inference.model_dirs, /usr/share/zhiyin/
// models, and the fetched third_party/models of a source tree (next to the
// binary's bin/ folder, then in the working directory). It does no I/O
// beyond looking up the executable's path.
func SearchDirs(cfg Config, dataDir string) []string {
	var dirs []string
	add := func(d string) {
		if d == "" {
			return
		}
		if abs, err := filepath.Abs(d); err == nil {
			d = abs
		}
		for _, x := range dirs {
			if x == d {
				return
			}
		}
		dirs = append(dirs, d)
	}
	if dataDir != "" {
		add(filepath.Join(dataDir, "models"))
	}
	for _, d := range cfg.ModelDirs {
		add(d)
	}
	add(SystemModelDir)
	for _, d := range fetchedDirs("models") {
		add(d)
	}
	return dirs
}

func slotName(name, slot string) string {
	if slot == SlotServing {
		return name
	}
	return name + "." + slot
}

// FindModel returns the folder holding model name in slot: the first of
// dirs with DIR/NAME[.slot]/model.yaml. The error wraps ErrModelNotFound and
// lists where it looked.
func FindModel(dirs []string, name, slot string) (string, error) {
	n := slotName(name, slot)
	for _, d := range dirs {
		p := filepath.Join(d, n)
		if _, err := os.Stat(filepath.Join(p, ManifestFile)); err == nil {
			return p, nil
		}
	}
	what := "model " + name
	if slot != SlotServing {
		what = slot + " version of model " + name
	}
	return "", fmt.Errorf("%w: no %s in %s", ErrModelNotFound, what, strings.Join(dirs, ", "))
}

// InstalledModel is one model folder found in the search dirs.
type InstalledModel struct {
	Name string `json:"name"`
	Slot string `json:"slot,omitempty"`
	Dir  string `json:"dir"`
	// Manifest is nil when Err is set.
	Manifest *Manifest `json:"-"`
	Err      error     `json:"-"`
	// Hidden is true when a folder of the same name and slot earlier in
	// the search order is used instead.
	Hidden bool `json:"hidden,omitempty"`
}

var slotEntryRe = regexp.MustCompile(`^([a-z0-9][a-z0-9_-]{0,63})(?:\.(candidate|previous))?$`)

// ListInstalled lists the model folders in dirs, sorted by name and slot
// (search order within one name). It reads every manifest, not the weights.
func ListInstalled(dirs []string) []InstalledModel {
	var out []InstalledModel
	seen := map[string]bool{}
	for _, d := range dirs {
		ents, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range ents {
			m := slotEntryRe.FindStringSubmatch(e.Name())
			if m == nil {
				continue
			}
			p := filepath.Join(d, e.Name())
			if _, err := os.Stat(filepath.Join(p, ManifestFile)); err != nil {
				continue
			}
			im := InstalledModel{Name: m[1], Slot: m[2], Dir: p, Hidden: seen[e.Name()]}
			seen[e.Name()] = true
			im.Manifest, im.Err = ReadManifest(p)
			if im.Err == nil && im.Manifest.Name != im.Name {
				im.Err = fmt.Errorf("%w: %s: the manifest names model %q but the folder is %q", ErrManifest, p, im.Manifest.Name, im.Name)
			}
			out = append(out, im)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Slot < out[j].Slot
	})
	return out
}

// CheckModel verifies a model folder without ONNX Runtime: the manifest,
// every file's sha256, and the ONNX graph's inputs and outputs against the
// contract. It reads every file.
func CheckModel(dir string) (*Manifest, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	if err := m.Verify(); err != nil {
		return m, err
	}
	info, err := onnxpb.ReadInfoFile(m.GraphPath())
	if err != nil {
		return m, fmt.Errorf("%s: %w", m.Name, err)
	}
	if err := compileContract(&m.Contract).checkGraph(info); err != nil {
		return m, fmt.Errorf("%s: %s: %w", m.Name, m.GraphPath(), err)
	}
	return m, nil
}

// Store manages the writable models folder (<data_dir>/models): installs,
// removals, promotions and rollbacks, each an atomic rename so that a crash
// never leaves a half-installed model. Not safe for concurrent use by two
// processes at once on the same folder beyond what atomic renames give.
type Store struct {
	Dir     string
	Catalog *Catalog
}

// NewStore returns a store over dir. It does no I/O.
func NewStore(dir string, cat *Catalog) *Store { return &Store{Dir: dir, Catalog: cat} }

// InstallOptions change how Install places a model.
type InstallOptions struct {
	// Name picks the catalog model when the source has no model.yaml, and
	// must match the manifest's name when it has one.
	Name string
	// Candidate installs the model as NAME.candidate, for shadow
	// evaluation and promotion, leaving the serving version alone.
	Candidate bool
	// Replace makes the model the serving version even when one is
	// installed; the old one becomes NAME.previous (for rollback).
	Replace bool
}

// Installed reports what Install did.
type Installed struct {
	Manifest *Manifest
	Slot     string
	// Link is the NAME[.slot] path in the store; Dir the folder it points to.
	Link, Dir string
	// Generated is true when model.yaml was written from the catalog.
	Generated bool
}

// maxArchiveBytes bounds what one archive may unpack to.
const maxArchiveBytes = 64 << 30

// Install copies a model folder, or unpacks a .tar.gz/.tgz/.tar.bz2/.tar
// archive, into the store, verifies it (sha256 of every file, the graph
// against the contract), writes its model.yaml from the catalog when the
// folder (a sherpa-onnx or FunASR release) has none, and links it as the
// serving or candidate version. Everything happens in a temporary folder
// that is renamed into place only when it is complete. ctx cancels the copy.
func (s *Store) Install(ctx context.Context, src string, opts InstallOptions) (*Installed, error) {
	st, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInstall, err)
	}
	storeDir := filepath.Join(s.Dir, storeSubdir)
	if err := os.MkdirAll(storeDir, 0o755); err != nil {
		return nil, fmt.Errorf("install: %w", err)
	}
	tmp, err := os.MkdirTemp(storeDir, ".tmp-")
	if err != nil {
		return nil, fmt.Errorf("install: %w", err)
	}
	defer os.RemoveAll(tmp)
	root := filepath.Join(tmp, "unpacked")
	if st.IsDir() {
		err = copyTree(ctx, src, root)
	} else {
		err = extractArchive(ctx, src, root)
	}
	if err != nil {
		return nil, err
	}
	modelDir, err := modelRoot(root)
	if err != nil {
		return nil, err
	}
	nameHint := filepath.Base(src)
	if st.IsDir() {
		nameHint = filepath.Base(filepath.Clean(src))
	} else if modelDir != root {
		nameHint = filepath.Base(modelDir)
	}
	// Errors name the source, not the temporary copy.
	shown := filepath.Clean(src)
	if !st.IsDir() {
		shown += "!" + strings.TrimPrefix(strings.TrimPrefix(modelDir, root), "/")
	}
	man, generated, err := s.describe(modelDir, nameHint, opts.Name)
	if err != nil {
		return nil, &pathErr{err, modelDir, shown}
	}
	// Check the graph's inputs and outputs against the contract now: a
	// wrong folder is refused here rather than when the daemon loads it.
	info, err := onnxpb.ReadInfoFile(man.GraphPath())
	if err != nil {
		return nil, &pathErr{fmt.Errorf("%w: %w", ErrInstall, err), modelDir, shown}
	}
	if err := compileContract(&man.Contract).checkGraph(info); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInstall, filepath.Join(shown, man.Graph), err)
	}
	if generated {
		b, err := man.Marshal()
		if err != nil {
			return nil, err
		}
		header := "# Written by `zhiyin models install` from models/catalog.yaml (" + time.Now().UTC().Format(time.RFC3339) + ").\n"
		if err := os.WriteFile(filepath.Join(modelDir, ManifestFile), append([]byte(header), b...), 0o644); err != nil {
			return nil, fmt.Errorf("install: %w", err)
		}
	}
	sum := ""
	for _, f := range man.Files {
		if f.Path == man.Graph {
			sum = f.SHA256[:12]
		}
	}
	folder := man.Name + "@" + safeVersion(man.Version) + "-" + sum
	final := filepath.Join(storeDir, folder)
	if _, err := os.Stat(final); err == nil {
		// The same version is installed already; verify it and reuse it.
		if err := (&Manifest{ModelSpec: ModelSpec{Name: man.Name}, Files: man.Files, Dir: final}).Verify(); err != nil {
			if rerr := os.RemoveAll(final); rerr != nil {
				return nil, fmt.Errorf("install: replace corrupt %s: %w", final, rerr)
			}
		}
	}
	if _, err := os.Stat(final); errors.Is(err, os.ErrNotExist) {
		if err := os.Rename(modelDir, final); err != nil {
			return nil, fmt.Errorf("install: %w", err)
		}
	}
	slot := SlotServing
	link := filepath.Join(s.Dir, man.Name)
	switch {
	case opts.Candidate:
		slot = SlotCandidate
	case exists(link) && !opts.Replace:
		cur, _ := ReadManifest(link)
		v := "?"
		if cur != nil {
			v = cur.Version
		}
		return nil, fmt.Errorf("%w: %s is already installed (version %s at %s): use --candidate to shadow-test the new one before promoting it, or --replace", ErrInstall, man.Name, v, link)
	case exists(link):
		prev, err := s.adopt(man.Name)
		if err != nil {
			return nil, err
		}
		if err := s.link(man.Name, SlotPrevious, prev); err != nil {
			return nil, err
		}
	}
	if err := s.link(man.Name, slot, folder); err != nil {
		return nil, err
	}
	s.gc(man.Name)
	out := &Installed{Slot: slot, Link: filepath.Join(s.Dir, slotName(man.Name, slot)), Dir: final, Generated: generated}
	out.Manifest, err = ReadManifest(out.Link)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// describe returns the manifest of the folder: its own model.yaml,
// verified, or one written from the catalog.
func (s *Store) describe(dir, folderName, name string) (*Manifest, bool, error) {
	if _, err := os.Stat(filepath.Join(dir, ManifestFile)); err == nil {
		m, err := ReadManifest(dir)
		if err != nil {
			return nil, false, err
		}
		if name != "" && m.Name != name {
			return nil, false, fmt.Errorf("%w: the folder's model.yaml names model %q, not %q", ErrInstall, m.Name, name)
		}
		if err := m.Verify(); err != nil {
			return nil, false, err
		}
		return m, false, nil
	}
	if s.Catalog == nil {
		return nil, false, fmt.Errorf("%w: %s has no model.yaml", ErrInstall, folderName)
	}
	cm, err := s.Catalog.identify(dir, folderName, name)
	if err != nil {
		return nil, false, err
	}
	sums := map[string]FileSum{}
	for _, f := range cm.Files {
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		sum, size, err := FileSHA256(p)
		if err != nil {
			continue
		}
		sums[f.Path] = FileSum{Path: f.Path, SHA256: sum, Size: size}
	}
	m, err := cm.manifest(sums)
	if err != nil {
		return nil, false, err
	}
	m.Dir = dir
	return m, true, nil
}

// pathErr shows err with the temporary folder from replaced by to.
type pathErr struct {
	err      error
	from, to string
}

func (e *pathErr) Error() string { return strings.ReplaceAll(e.err.Error(), e.from, e.to) }
func (e *pathErr) Unwrap() error { return e.err }

var unsafeVersionRe = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func safeVersion(v string) string {
	v = unsafeVersionRe.ReplaceAllString(v, "_")
	if len(v) > 40 {
		v = v[:40]
	}
	return v
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

// adopt makes sure NAME in the store is a link into .store (moving a plain
// folder there) and returns the folder it points to.
func (s *Store) adopt(name string) (string, error) {
	p := filepath.Join(s.Dir, name)
	fi, err := os.Lstat(p)
	if err != nil {
		return "", err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		t, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		return filepath.Base(t), nil
	}
	m, err := ReadManifest(p)
	v := "unknown"
	if err == nil {
		v = safeVersion(m.Version)
	}
	folder := fmt.Sprintf("%s@%s-adopted-%d", name, v, time.Now().UnixNano())
	if err := os.Rename(p, filepath.Join(s.Dir, storeSubdir, folder)); err != nil {
		return "", fmt.Errorf("move %s into %s: %w", p, storeSubdir, err)
	}
	if err := s.link(name, SlotServing, folder); err != nil {
		return "", err
	}
	return folder, nil
}

// link points NAME[.slot] at .store/folder atomically.
func (s *Store) link(name, slot, folder string) error {
	p := filepath.Join(s.Dir, slotName(name, slot))
	tmp := fmt.Sprintf("%s.tmp-%d", p, time.Now().UnixNano())
	if err := os.Symlink(filepath.Join(storeSubdir, folder), tmp); err != nil {
		return fmt.Errorf("link %s: %w", p, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("link %s: %w", p, err)
	}
	return nil
}

// target returns the .store folder NAME[.slot] links to, "" when absent.
func (s *Store) target(name, slot string) (string, error) {
	p := filepath.Join(s.Dir, slotName(name, slot))
	fi, err := os.Lstat(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", nil
		}
		return "", err
	}
	if fi.Mode()&fs.ModeSymlink == 0 {
		if slot == SlotServing {
			return s.adopt(name)
		}
		return "", fmt.Errorf("%s is not a link into %s; move it away", p, storeSubdir)
	}
	t, err := os.Readlink(p)
	if err != nil {
		return "", err
	}
	return filepath.Base(t), nil
}

// gc removes the .store folders of model name that no slot links to.
func (s *Store) gc(name string) {
	used := map[string]bool{}
	for _, slot := range []string{SlotServing, SlotCandidate, SlotPrevious} {
		if t, err := os.Readlink(filepath.Join(s.Dir, slotName(name, slot))); err == nil {
			used[filepath.Base(t)] = true
		}
	}
	ents, err := os.ReadDir(filepath.Join(s.Dir, storeSubdir))
	if err != nil {
		return
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), name+"@") && !used[e.Name()] {
			_ = os.RemoveAll(filepath.Join(s.Dir, storeSubdir, e.Name()))
		}
	}
}

// Promote makes NAME.candidate the serving version on disk; the serving one
// becomes NAME.previous. Each step is an atomic rename.
func (s *Store) Promote(name string) error {
	cand, err := s.target(name, SlotCandidate)
	if err != nil {
		return fmt.Errorf("promote %s: %w", name, err)
	}
	if cand == "" {
		return fmt.Errorf("promote %s: %w: install one with `zhiyin models install --candidate SRC`", name, ErrNoCandidate)
	}
	cur, err := s.target(name, SlotServing)
	if err != nil {
		return fmt.Errorf("promote %s: %w", name, err)
	}
	if cur != "" {
		if err := s.link(name, SlotPrevious, cur); err != nil {
			return fmt.Errorf("promote %s: %w", name, err)
		}
	}
	if err := s.link(name, SlotServing, cand); err != nil {
		return fmt.Errorf("promote %s: %w", name, err)
	}
	if err := os.Remove(filepath.Join(s.Dir, slotName(name, SlotCandidate))); err != nil {
		return fmt.Errorf("promote %s: %w", name, err)
	}
	s.gc(name)
	return nil
}

// Rollback makes NAME.previous the serving version again on disk; the
// version it replaces becomes NAME.candidate (so it can be evaluated again).
// Without a previous version in the store, a serving version in the store
// is moved to NAME.candidate when lowerDirs (the later search dirs) hold
// the model, which then serves again.
func (s *Store) Rollback(name string, lowerDirs []string) error {
	prev, err := s.target(name, SlotPrevious)
	if err != nil {
		return fmt.Errorf("rollback %s: %w", name, err)
	}
	cur, err := s.target(name, SlotServing)
	if err != nil {
		return fmt.Errorf("rollback %s: %w", name, err)
	}
	if prev == "" {
		if cur == "" {
			return fmt.Errorf("rollback %s: %w", name, ErrNoPrevious)
		}
		if _, err := FindModel(lowerDirs, name, SlotServing); err != nil {
			return fmt.Errorf("rollback %s: %w: no %s.previous in %s and no other installed copy", name, ErrNoPrevious, name, s.Dir)
		}
		if err := s.link(name, SlotCandidate, cur); err != nil {
			return fmt.Errorf("rollback %s: %w", name, err)
		}
		if err := os.Remove(filepath.Join(s.Dir, name)); err != nil {
			return fmt.Errorf("rollback %s: %w", name, err)
		}
		s.gc(name)
		return nil
	}
	if cur != "" {
		if err := s.link(name, SlotCandidate, cur); err != nil {
			return fmt.Errorf("rollback %s: %w", name, err)
		}
	}
	if err := s.link(name, SlotServing, prev); err != nil {
		return fmt.Errorf("rollback %s: %w", name, err)
	}
	if err := os.Remove(filepath.Join(s.Dir, slotName(name, SlotPrevious))); err != nil {
		return fmt.Errorf("rollback %s: %w", name, err)
	}
	s.gc(name)
	return nil
}

// Remove deletes NAME[.slot] from the store, and its folder when no other
// link uses it. Models outside the store (the package's) cannot be removed
// here.
func (s *Store) Remove(name, slot string) error {
	p := filepath.Join(s.Dir, slotName(name, slot))
	fi, err := os.Lstat(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove: %w: %s does not exist", ErrModelNotFound, p)
		}
		return fmt.Errorf("remove: %w", err)
	}
	if fi.Mode()&fs.ModeSymlink == 0 {
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("remove %s: %w", p, err)
		}
		return nil
	}
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	s.gc(name)
	return nil
}

// modelRoot returns the folder of an unpacked release: root itself, or its
// only entry when that is a folder.
func modelRoot(root string) (string, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return "", fmt.Errorf("install: %w", err)
	}
	if len(ents) == 1 && ents[0].IsDir() {
		return filepath.Join(root, ents[0].Name()), nil
	}
	if len(ents) == 0 {
		return "", fmt.Errorf("%w: the source is empty", ErrInstall)
	}
	return root, nil
}

// copyTree copies the regular files and folders of src into dst.
func copyTree(ctx context.Context, src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInstall, err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		out := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(out, 0o755)
		case d.Type().IsRegular():
			return copyFile(p, out)
		default:
			return fmt.Errorf("%w: %s is not a regular file (links and devices are not copied)", ErrInstall, p)
		}
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// extractArchive unpacks a tar archive (plain, gzip or bzip2, chosen by
// content) into dst.
func extractArchive(ctx context.Context, src, dst string) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInstall, err)
	}
	defer f.Close()
	return extractTar(ctx, f, dst, maxArchiveBytes)
}

// extractTar unpacks regular files and folders from r (a tar stream,
// optionally gzip- or bzip2-compressed) into dst, refusing absolute paths,
// paths leaving dst, links and devices, and more than limit bytes.
func extractTar(ctx context.Context, r io.Reader, dst string, limit int64) error {
	br := newPeekReader(r)
	head := br.peek(3)
	var rd io.Reader = br
	switch {
	case len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b:
		gz, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("%w: gzip: %v", ErrInstall, err)
		}
		defer gz.Close()
		rd = gz
	case len(head) >= 3 && string(head) == "BZh":
		rd = bzip2.NewReader(br)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	tr := tar.NewReader(rd)
	var total int64
	files := 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: not a readable .tar, .tar.gz or .tar.bz2 archive: %v", ErrInstall, err)
		}
		name := filepath.ToSlash(filepath.Clean(filepath.FromSlash(strings.TrimPrefix(h.Name, "./"))))
		if name == "." {
			continue
		}
		if strings.HasPrefix(h.Name, "/") || name == ".." || strings.HasPrefix(name, "../") || filepath.IsAbs(name) {
			return fmt.Errorf("%w: archive entry %q leaves the folder", ErrInstall, h.Name)
		}
		out := filepath.Join(dst, filepath.FromSlash(name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if h.Size < 0 || total+h.Size > limit {
				return fmt.Errorf("%w: archive unpacks to more than %d bytes", ErrInstall, limit)
			}
			total += h.Size
			if files++; files > 100000 {
				return fmt.Errorf("%w: archive has too many files", ErrInstall)
			}
			if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
				return err
			}
			w, err := os.OpenFile(out, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			_, err = io.Copy(w, io.LimitReader(tr, h.Size))
			if cerr := w.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("%w: unpack %s: %v", ErrInstall, name, err)
			}
		case tar.TypeXGlobalHeader, tar.TypeXHeader:
		default:
			return fmt.Errorf("%w: archive entry %q is a link or special file; only files and folders are installed", ErrInstall, h.Name)
		}
	}
	return nil
}

// peekReader lets the first bytes of a stream be inspected.
type peekReader struct {
	r   io.Reader
	buf []byte
}

func newPeekReader(r io.Reader) *peekReader { return &peekReader{r: r} }

func (p *peekReader) peek(n int) []byte {
	for len(p.buf) < n {
		b := make([]byte, n-len(p.buf))
		k, err := p.r.Read(b)
		p.buf = append(p.buf, b[:k]...)
		if err != nil {
			break
		}
	}
	return p.buf
}

func (p *peekReader) Read(b []byte) (int, error) {
	if len(p.buf) > 0 {
		n := copy(b, p.buf)
		p.buf = p.buf[n:]
		return n, nil
	}
	return p.r.Read(b)
}
