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

// Package version says which problemhook a binary is: the release it was
// built as and the commit it was built from (`manager --version`).
package version

import (
	"runtime/debug"
)

// Version is the release the binary was built as. `make build` sets it
// from the Makefile's VERSION:
//
//	go build -ldflags "-X github.com/problemhook/problemhook/internal/version.Version=0.1.0"
var Version = "dev"

// String says the version and the commit, as `manager --version` prints
// them: "problemhook 0.1.0 (commit 1928770…)". The commit is what the go
// command stamped into the binary (vcs.revision), "-dirty" after it when
// the work tree had changes, and "unknown" when it stamped none: a build
// outside a git checkout (the image's, which has no .git), in a git
// worktree, or with -buildvcs=false.
func String() string {
	info, _ := debug.ReadBuildInfo()
	return format(Version, info)
}

func format(version string, info *debug.BuildInfo) string {
	commit, dirty := "unknown", false
	if info != nil {
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if dirty {
		commit += "-dirty"
	}
	return "problemhook " + version + " (commit " + commit + ")"
}
