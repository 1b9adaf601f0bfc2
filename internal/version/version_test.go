/*
Copyright 2026 The problemhook Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package version

import (
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"strings"
	"testing"
)

func TestFormat(t *testing.T) {
	const rev = "1928770b1f0c5a3d2e4f6a8b0c1d2e3f4a5b6c7d"
	for _, tc := range []struct {
		name string
		info *debug.BuildInfo
		want string
	}{
		{"a clean checkout", &debug.BuildInfo{Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: "false"}}},
			"problemhook 0.1.0 (commit " + rev + ")"},
		{"changes not committed", &debug.BuildInfo{Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: "true"}}},
			"problemhook 0.1.0 (commit " + rev + "-dirty)"},
		{"no VCS stamp", &debug.BuildInfo{Settings: []debug.BuildSetting{{Key: "-trimpath", Value: "true"}}},
			"problemhook 0.1.0 (commit unknown)"},
		{"no build info", nil, "problemhook 0.1.0 (commit unknown)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := format("0.1.0", tc.info); got != tc.want {
				t.Errorf("format = %q, want %q", got, tc.want)
			}
		})
	}
}

type marker struct{}

// The Makefile's build sets this package's Version: a -X naming a
// variable that does not exist is ignored by the linker, silently.
func TestMakefileSetsVersion(t *testing.T) {
	makefile, err := os.ReadFile(filepath.Join("..", "..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	want := "-X " + reflect.TypeOf(marker{}).PkgPath() + ".Version=$(VERSION)"
	if !strings.Contains(string(makefile), want) {
		t.Errorf("the Makefile's build does not pass %q", want)
	}
}
