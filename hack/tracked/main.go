// Command tracked fails when git tracks a build output: an executable
// binary, or any file larger than 1 MiB. `make lint` runs it, so a binary
// committed by accident fails CI with its name instead of staying in the
// history unnoticed.
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
	out, err := exec.Command("git", "ls-files", "-z", "--cached", "--stage").Output()
	if err != nil {
		fmt.Fprintf(os.Stderr, "tracked: listing tracked files: %v\n", err)
		os.Exit(2)
	}
	failed := false
	for _, entry := range strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00") {
		if entry == "" {
			continue
		}
		// "<mode> <object> <stage>\t<path>"
		meta, path, _ := strings.Cut(entry, "\t")
		mode, _, _ := strings.Cut(meta, " ")
		f, err := os.Open(path)
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
		if why := refuse(mode, head[:n], info.Size()); why != "" {
			fmt.Fprintf(os.Stderr, "%s: %s: build outputs belong in bin/, which git ignores; remove it with git rm --cached %s\n", path, why, path)
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
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
