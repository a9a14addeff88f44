package packaging_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the packages in dist/")

// repoRoot is the repository root, seen from this package's folder (where
// `go test` runs).
const repoRoot = ".."

func readVersion(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "VERSION"))
	if err != nil {
		t.Fatalf("read VERSION: %v", err)
	}
	return strings.TrimSpace(string(b))
}

// builtPackage returns dist/NAME, skipping the test when it has not been
// built or when tool (needed to read it) is missing.
func builtPackage(t *testing.T, name, tool string) string {
	t.Helper()
	p := filepath.Join(repoRoot, "dist", name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s not built: run make package first", p)
	}
	if _, err := exec.LookPath(tool); err != nil {
		t.Skipf("%s not installed (scripts/setup.sh test installs it): cannot read %s", tool, p)
	}
	return p
}

func output(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, ee.Stderr)
		}
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return string(out)
}

// compareGolden compares got with testdata/NAME, or rewrites it with -update.
func compareGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatalf("write %s: %v", path, err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v (run go test ./packaging -update to create it)", path, err)
	}
	if got != string(want) {
		t.Errorf("package content differs from %s (after an intended change: go test ./packaging -update):\n%s",
			path, lineDiff(string(want), got))
	}
}

// lineDiff lists the lines only in want (-) and only in got (+).
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for _, l := range w {
		if !slices.Contains(g, l) {
			fmt.Fprintf(&b, "- %s\n", l)
		}
	}
	for _, l := range g {
		if !slices.Contains(w, l) {
			fmt.Fprintf(&b, "+ %s\n", l)
		}
	}
	return b.String()
}

// debListing lists a .deb's data archive: one line per entry with mode,
// owner/group and path (and a symlink's target); sizes and times left out.
func debListing(t *testing.T, deb string) string {
	t.Helper()
	cmd := exec.Command("dpkg-deb", "--fsys-tarfile", deb)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("dpkg-deb --fsys-tarfile: %v", err)
	}
	var entries []entry
	tr := tar.NewReader(stdout)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read data archive of %s: %v", deb, err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(h.Name, "."), "/")
		if name == "" {
			name = "/"
		}
		line := fmt.Sprintf("%s %s/%s %s", h.FileInfo().Mode(), h.Uname, h.Gname, name)
		if h.Typeflag == tar.TypeSymlink {
			line += " -> " + h.Linkname
		}
		entries = append(entries, entry{name, line})
	}
	_, _ = io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("dpkg-deb --fsys-tarfile %s: %v: %s", deb, err, stderr.String())
	}
	return listing(entries)
}

// entry is one line of a package listing and the path it sorts by.
type entry struct{ path, line string }

// listing joins the lines sorted by path.
func listing(entries []entry) string {
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.path, b.path) })
	var b strings.Builder
	for _, e := range entries {
		b.WriteString(e.line + "\n")
	}
	return b.String()
}

func TestDebContents(t *testing.T) {
	deb := builtPackage(t, fmt.Sprintf("zhiyin_%s_amd64.deb", readVersion(t)), "dpkg-deb")
	compareGolden(t, "deb-contents.golden", debListing(t, deb))

	t.Run("conffiles", func(t *testing.T) {
		got := strings.Fields(output(t, "dpkg-deb", "--info", deb, "conffiles"))
		want := []string{"/etc/zhiyin/zhiyin.yaml"}
		if !slices.Equal(got, want) {
			t.Errorf("conffiles = %q, want %q", got, want)
		}
	})

	// The declared relationships, exactly: each is a promise to the
	// integrator's apt (see packaging/nfpm.yaml for why each is there).
	for _, tc := range []struct{ field, want string }{
		{"Package", "zhiyin"},
		{"Architecture", "amd64"},
		{"Depends", "libc6 (>= 2.34), libstdc++6 (>= 6), libgcc-s1, libportaudio2, procps"},
		{"Recommends", "ca-certificates, espeak-ng"},
		{"Suggests", ""},
		{"Pre-Depends", ""},
		{"Conflicts", ""},
	} {
		t.Run(tc.field, func(t *testing.T) {
			got := strings.TrimSpace(output(t, "dpkg-deb", "--field", deb, tc.field))
			if got != tc.want {
				t.Errorf("%s = %q, want %q", tc.field, got, tc.want)
			}
		})
	}
}

// rpmListing lists an .rpm's files like debListing, plus rpm's file flags
// (c = %config, n = noreplace, d = %doc).
func rpmListing(t *testing.T, rpm string) string {
	t.Helper()
	out := output(t, "rpm", "-qp", "--qf",
		`[%{FILEMODES:perms}\t%{FILEUSERNAME}\t%{FILEGROUPNAME}\t%{FILEFLAGS:fflags}\t%{FILENAMES}\t%{FILELINKTOS}\n]`, rpm)
	var entries []entry
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 6 {
			t.Fatalf("rpm --qf: unexpected line %q", sc.Text())
		}
		line := fmt.Sprintf("%s %s/%s %s", f[0], f[1], f[2], f[4])
		if f[5] != "" {
			line += " -> " + f[5]
		}
		if f[3] != "" {
			line += " [" + f[3] + "]"
		}
		entries = append(entries, entry{f[4], line})
	}
	return listing(entries)
}

func TestRPMContents(t *testing.T) {
	rpm := builtPackage(t, fmt.Sprintf("zhiyin-%s.x86_64.rpm", readVersion(t)), "rpm")
	compareGolden(t, "rpm-contents.golden", rpmListing(t, rpm))

	t.Run("config noreplace", func(t *testing.T) {
		if got := strings.TrimSpace(output(t, "rpm", "-qpc", rpm)); got != "/etc/zhiyin/zhiyin.yaml" {
			t.Errorf("rpm -qpc = %q, want /etc/zhiyin/zhiyin.yaml", got)
		}
	})
	t.Run("requires", func(t *testing.T) {
		got := strings.Split(strings.TrimSpace(output(t, "rpm", "-qpR", rpm)), "\n")
		want := []string{"glibc >= 2.34", "libstdc++", "libgcc", "portaudio", "util-linux"}
		if !slices.Equal(got, want) {
			t.Errorf("rpm -qpR = %q, want %q", got, want)
		}
	})
	t.Run("scriptlets", func(t *testing.T) {
		got := output(t, "rpm", "-qp", "--scripts", rpm)
		for _, s := range []string{"preinstall", "postinstall", "preuninstall", "postuninstall"} {
			if !strings.Contains(got, s+" scriptlet") {
				t.Errorf("no %s scriptlet in:\n%s", s, got)
			}
		}
	})
}

// configLines returns the non-blank, non-comment lines of a sysusers.d text.
func configLines(s string) []string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// The preinstall script carries a copy of the sysusers.d file (it runs before
// the file is unpacked); the two must not drift apart.
func TestPreinstallSysusersMatchesFile(t *testing.T) {
	file, err := os.ReadFile(filepath.Join(repoRoot, "systemd", "zhiyin.sysusers"))
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile(filepath.Join("scripts", "preinstall.sh"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(script), "<<'SYSUSERS'\n")
	if !ok {
		t.Fatal("preinstall.sh: no <<'SYSUSERS' here-document")
	}
	heredoc, _, ok := strings.Cut(rest, "\nSYSUSERS\n")
	if !ok {
		t.Fatal("preinstall.sh: the SYSUSERS here-document does not end")
	}
	got, want := configLines(heredoc), configLines(string(file))
	if !slices.Equal(got, want) {
		t.Errorf("preinstall.sh sysusers lines differ from systemd/zhiyin.sysusers:\n got %q\nwant %q", got, want)
	}
}

// copyTree copies the regular files and symlinks below src into dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, target)
		case d.Type().IsRegular():
			return copyFile(p, target, 0o644)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
}

func copyFile(src, dst string, mode os.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, b, mode)
}

// TestUnitsVerify runs systemd-analyze verify on the repository's units in a
// scratch root holding the host's systemd units, an executable at
// /usr/bin/zhiyin and /bin/kill — the fast check; scripts/package-test.sh
// verifies the units as installed in a Debian chroot. verify exits 0 on
// unknown keys, so any output at all fails the test.
func TestUnitsVerify(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not installed (scripts/setup.sh test installs systemd)")
	}
	hostUnits := ""
	for _, d := range []string{"/usr/lib/systemd/system", "/lib/systemd/system"} {
		if _, err := os.Stat(filepath.Join(d, "sysinit.target")); err == nil {
			hostUnits = d
			break
		}
	}
	kill, err := exec.LookPath("kill")
	if hostUnits == "" || err != nil {
		t.Skip("needs the host's systemd units and kill(1) to build a scratch root")
	}
	// verify only checks that ExecStart= names an executable file; the built
	// binary when the Makefile says where it is, else this test binary.
	bin := os.Getenv("ZHIYIN_TEST_BINARY")
	if _, err := os.Stat(bin); bin == "" || err != nil {
		if bin, err = os.Executable(); err != nil {
			t.Fatal(err)
		}
	}

	root := t.TempDir()
	units := filepath.Join(root, "usr/lib/systemd/system")
	copyTree(t, hostUnits, units)
	for _, f := range []struct {
		src, dst string
		mode     os.FileMode
	}{
		{bin, "usr/bin/zhiyin", 0o755},
		{kill, "bin/kill", 0o755},
		{filepath.Join(repoRoot, "systemd/zhiyin.service"), "usr/lib/systemd/system/zhiyin.service", 0o644},
		{filepath.Join(repoRoot, "systemd/zhiyin.socket"), "usr/lib/systemd/system/zhiyin.socket", 0o644},
	} {
		if err := copyFile(f.src, filepath.Join(root, f.dst), f.mode); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command("systemd-analyze", "verify", "--man=no", "--root="+root,
		"zhiyin.service", "zhiyin.socket").CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
