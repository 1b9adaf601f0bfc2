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

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestSlug(t *testing.T) {
	for _, tc := range []struct{ heading, want string }{
		{"Install", "install"},
		{"Point Dynatrace at it", "point-dynatrace-at-it"},
		{"Messages: Twilio, DingTalk, HTTP", "messages-twilio-dingtalk-http"},
		{"End-to-end tests on a real node", "end-to-end-tests-on-a-real-node"},
		{"Guance / TrueWatch", "guance--truewatch"},
		{"`make run` and `make test`", "make-run-and-make-test"},
		{"snake_case stays", "snake_case-stays"},
		{"The [receiver](receiver.md) answers", "the-receiver-answers"},
		{"What's new? (v0.1.0)", "whats-new-v010"},
		{"Größe und Ü", "größe-und-ü"},
		{"  spaced  ", "spaced"},
	} {
		t.Run(tc.heading, func(t *testing.T) {
			if got := Slug(tc.heading); got != tc.want {
				t.Errorf("Slug(%q) = %q, want %q", tc.heading, got, tc.want)
			}
		})
	}
}

func TestAnchors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		headings []string
		want     []string
	}{
		{"distinct", []string{"A", "B"}, []string{"a", "b"}},
		{"duplicates count from 1", []string{"Example", "Example", "Other", "Example"}, []string{"example", "example-1", "other", "example-2"}},
		{"same slug, different text", []string{"Run!", "Run?"}, []string{"run", "run-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Anchors(tc.headings); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Anchors(%q) = %q, want %q", tc.headings, got, tc.want)
			}
		})
	}
}

func TestHeadings(t *testing.T) {
	for _, tc := range []struct{ name, src string }{
		{"atx", "# One\n\ntext\n\n## Two ##\n"},
		{"setext", "One\n===\n\nTwo\n---\n"},
		{"not in a fence", "# One\n```sh\n# a comment\n```\n~~~\n# another\n~~~\n## Two\n"},
		{"a table is not a setext heading", "# One\n| a | b |\n| --- | --- |\n## Two\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Headings([]byte(tc.src)); !reflect.DeepEqual(got, []string{"One", "Two"}) {
				t.Errorf("Headings = %q, want One and Two", got)
			}
		})
	}
}

func TestHTMLAnchors(t *testing.T) {
	src := "### <a id=\"spec-auth\"></a>`spec.auth`\n<a name=\"old\"></a>\n`<a id=\"in-code\">`\n```\n<a id=\"fenced\"></a>\n```\n"
	if got, want := HTMLAnchors([]byte(src)), []string{"spec-auth", "old"}; !reflect.DeepEqual(got, want) {
		t.Errorf("HTMLAnchors = %q, want %q", got, want)
	}
}

func TestLinks(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []Link
	}{
		{"inline", "see [install](docs/install.md#tls) and ![logo](img.png)\n", []Link{{1, "docs/install.md#tls"}, {1, "img.png"}}},
		{"title and angle brackets", "[a](<b c.md> \"title\")\n", []Link{{1, "b c.md"}}},
		{"code text in a link", "[`config/samples/`](config/samples)\n", []Link{{1, "config/samples"}}},
		{"reference definition", "[ref]: docs/x.md\n", []Link{{1, "docs/x.md"}}},
		{"line numbers", "one\n\n[a](a.md)\n", []Link{{3, "a.md"}}},
		{"fenced code is skipped", "```md\n[a](missing.md)\n```\n[b](b.md)\n", []Link{{4, "b.md"}}},
		{"indented fence is skipped", "1. step\n\n   ```json\n   [a](missing.md)\n   ```\n", nil},
		{"code span is skipped", "run `[a](missing.md)` then\n", nil},
		{"a longer fence closes only with as many", "````\n```\n[a](missing.md)\n````\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Links([]byte(tc.src)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Links = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestRun checks a small repository, each case's README.md against the
// same docs and files.
func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name, readme string
		problems     []string // each a line the run must print
	}{
		{"every kind of good link", strings.Join([]string{
			"# Title",
			"## Usage",
			"## Usage",
			"[here](#title) [again](#usage-1) [docs](docs/a.md) [section](docs/a.md#a-section)",
			"[samples](config/samples) [sample](config/samples/x.yaml) [root](/docs/a.md#other-heading)",
			"[web](https://example.com/nothing.md#x) [mail](mailto:a@example.com) [http](http://x)",
			"[go](main.go#L10) [query](docs/a.md?plain=1) [html](docs/a.md#field-x)",
		}, "\n"), nil},
		{"missing file", "# T\n\n[gone](docs/gone.md)\n", []string{"README.md:3: docs/gone.md: no file or directory docs/gone.md"}},
		{"missing directory", "[gone](config/nothing/)\n", []string{"README.md:1: config/nothing/: no file or directory config/nothing"}},
		{"missing anchor here", "# T\n[x](#nope)\n", []string{"README.md:2: #nope: no heading of README.md has the anchor #nope"}},
		{"missing anchor there", "[x](docs/a.md#nope)\n", []string{"README.md:1: docs/a.md#nope: no heading of docs/a.md has the anchor #nope"}},
		{"anchors are case-sensitive", "[x](docs/a.md#A-Section)\n", []string{"README.md:1: docs/a.md#A-Section: no heading of docs/a.md has the anchor #A-Section"}},
		{"out of the repository", "[x](../elsewhere.md)\n", []string{"README.md:1: ../elsewhere.md: leads out of the repository"}},
		{"fenced and spanned links are not checked", "```\n[x](gone.md)\n```\n`[y](gone.md)`\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			write(t, root, "README.md", tc.readme)
			write(t, root, "docs/a.md", "# A page\n\nSee the [README](../README.md).\n\n## A section\n\nOther heading\n---\n\n### <a id=\"field-x\"></a>`x`\n")
			write(t, root, "config/samples/x.yaml", "kind: X\n")
			write(t, root, "main.go", "package main\n")
			var stdout, stderr bytes.Buffer
			code := run(root, &stdout, &stderr)
			if len(tc.problems) == 0 {
				if code != 0 {
					t.Fatalf("exit code %d, want 0; stderr:\n%s", code, stderr.String())
				}
				return
			}
			if code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			for _, p := range tc.problems {
				if !strings.Contains(stderr.String(), p+"\n") {
					t.Errorf("stderr does not say %q:\n%s", p, stderr.String())
				}
			}
		})
	}
}

func TestRunWithoutMarkdown(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(t.TempDir(), &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "no Markdown files") {
		t.Errorf("exit code %d, stderr %q: want 2 and a word about the missing files", code, stderr.String())
	}
}

func write(t *testing.T, root, name, content string) {
	t.Helper()
	path := filepath.Join(root, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
