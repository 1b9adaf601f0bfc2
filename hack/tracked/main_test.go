package main

import (
	"testing"

	. "github.com/onsi/gomega"
)

func TestRefuse(t *testing.T) {
	for _, tc := range []struct {
		name, mode, head string
		size             int64
		refused          string
	}{
		{"source file", "100644", "pack", 2000, ""},
		{"script", "100755", "#!/u", 300, ""},
		{"exactly 1 MiB", "100644", "{\"a\"", 1 << 20, ""},
		{"past 1 MiB", "100644", "{\"a\"", 1<<20 + 1, "1048577 bytes, more than the 1 MiB a tracked file may have"},
		{"Linux binary", "100755", "\x7fELF", 57872086, "57872086 bytes, more than the 1 MiB a tracked file may have"},
		{"small Linux binary", "100644", "\x7fELF", 9000, "an ELF executable"},
		{"macOS binary", "100755", "\xcf\xfa\xed\xfe", 9000, "a Mach-O executable"},
		{"universal macOS binary", "100644", "\xca\xfe\xba\xbe", 9000, "a Mach-O executable"},
		{"Windows binary", "100644", "MZ\x90\x00", 9000, "a Windows executable"},
		{"executable bit on data", "100755", "data", 10, "marked executable but not a script (no #! line)"},
		{"empty file", "100644", "", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			NewWithT(t).Expect(refuse(tc.mode, []byte(tc.head), tc.size)).To(Equal(tc.refused))
		})
	}
}
