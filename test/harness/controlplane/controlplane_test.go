package controlplane

import (
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
)

// RepoRoot is found from this package's own path: when the package moves,
// it must still name the directory that holds go.mod.
func TestRepoRoot(t *testing.T) {
	g := NewWithT(t)
	mod, err := os.ReadFile(filepath.Join(RepoRoot(), "go.mod"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(mod)).To(HavePrefix("module github.com/problemhook/problemhook\n"))
}
