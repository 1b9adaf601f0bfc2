// Command tracked fails when git tracks a build output (an executable
// binary, or any file larger than 1 MiB), or when one lies in the work tree
// where .gitignore does not ignore it, so that `git add` would track it.
// `make lint` runs it: a binary built outside bin/ fails the lint with its
// name before it is committed, instead of staying in the history.
package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// maxTrackedSize is the largest file the repository may track.
const maxTrackedSize = 1 << 20

// headerSize is how much of a file is read to recognise an executable.
const headerSize = 4

func main() {
	files, err := candidates()
	if err != nil {
		fmt.Fprintf(os.Stderr, "tracked: %v\n", err)
		os.Exit(2)
	}
	failed := false
	for _, c := range files {
		f, err := os.Open(c.path)
		if os.IsNotExist(err) {
			continue // deleted in the work tree; git says so elsewhere
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "tracked: %v\n", err)
			os.Exit(2)
		}
		info, err := f.Stat()
		if err != nil {
			fmt.Fprintf(os.Stderr, "tracked: %v\n", err)
			os.Exit(2)
		}
		head := make([]byte, headerSize)
		n, _ := io.ReadFull(f, head)
		_ = f.Close()
		mode := c.mode
		if mode == "" && info.Mode().IsRegular() {
			mode = "100644"
			if info.Mode().Perm()&0o111 != 0 {
				mode = "100755"
			}
		}
		why := refuse(mode, head[:n], info.Size())
		switch {
		case why == "" || info.IsDir():
		case c.mode != "":
			fmt.Fprintf(os.Stderr, "%s: %s: build outputs belong in bin/, which git ignores; remove it with git rm --cached %s\n", c.path, why, c.path)
			failed = true
		default:
			fmt.Fprintf(os.Stderr, "%s: %s, not ignored, so git add would track it: build outputs belong in bin/; delete it or move it there\n", c.path, why)
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}

// candidate is a file git tracks (mode is its git mode) or would track
// with git add (mode is empty, read from the file).
type candidate struct{ path, mode string }

// candidates lists the tracked files and the untracked ones .gitignore
// does not ignore: .gitignore names what is ignored, so a binary built
// where it should not be is refused before it is ever committed.
func candidates() ([]candidate, error) {
	tracked, err := exec.Command("git", "ls-files", "-z", "--cached", "--stage").Output()
	if err != nil {
		return nil, fmt.Errorf("listing tracked files: %w", err)
	}
	var out []candidate
	for _, entry := range strings.Split(strings.TrimSuffix(string(tracked), "\x00"), "\x00") {
		if entry == "" {
			continue
		}
		// "<mode> <object> <stage>\t<path>"
		meta, path, _ := strings.Cut(entry, "\t")
		mode, _, _ := strings.Cut(meta, " ")
		out = append(out, candidate{path: path, mode: mode})
	}
	untracked, err := exec.Command("git", "ls-files", "-z", "--others", "--exclude-standard").Output()
	if err != nil {
		return nil, fmt.Errorf("listing untracked files: %w", err)
	}
	for _, path := range strings.Split(strings.TrimSuffix(string(untracked), "\x00"), "\x00") {
		if path != "" {
			out = append(out, candidate{path: path})
		}
	}
	return out, nil
}

// refuse says why a tracked file with this git mode, first bytes and size
// must not be tracked, or "" when it may be.
func refuse(mode string, head []byte, size int64) string {
	switch {
	case size > maxTrackedSize:
		return fmt.Sprintf("%d bytes, more than the 1 MiB a tracked file may have", size)
	case bytes.HasPrefix(head, []byte("\x7fELF")):
		return "an ELF executable"
	case bytes.HasPrefix(head, []byte{0xcf, 0xfa, 0xed, 0xfe}), bytes.HasPrefix(head, []byte{0xce, 0xfa, 0xed, 0xfe}), bytes.HasPrefix(head, []byte{0xca, 0xfe, 0xba, 0xbe}):
		return "a Mach-O executable"
	case bytes.HasPrefix(head, []byte("MZ")):
		return "a Windows executable"
	case mode == "100755" && !bytes.HasPrefix(head, []byte("#!")):
		return "marked executable but not a script (no #! line)"
	}
	return ""
}
