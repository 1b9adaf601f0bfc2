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

// Command doclinks fails when a relative link in the documentation leads
// nowhere: README.md, every other top-level *.md and every docs/*.md are
// read, and each link that is not an absolute URL must name a file or
// directory that exists, and its #anchor, in the same file or in another
// Markdown file, must be the slug of one of that file's headings, as GitHub
// makes them, or the id of one of its HTML elements (<a id="x"></a>). Links inside fenced code blocks and code spans are not links.
// `make verify-links` (part of `make lint`) runs it from the root of the
// repository:
//
//	go run ./hack/doclinks
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

func main() {
	root := flag.String("root", ".", "The root of the repository.")
	flag.Parse()
	os.Exit(run(*root, os.Stdout, os.Stderr))
}

// run checks the documentation under root, writes each broken link to
// stderr, and returns the exit code: 0 when every link leads somewhere.
func run(root string, stdout, stderr io.Writer) int {
	files, err := docFiles(root)
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "doclinks: %v\n", err)
		return 2
	}
	c := newChecker(root)
	var problems []Problem
	for _, f := range files {
		p, err := c.checkFile(f)
		if err != nil {
			_, _ = fmt.Fprintf(stderr, "doclinks: %v\n", err)
			return 2
		}
		problems = append(problems, p...)
	}
	for _, p := range problems {
		_, _ = fmt.Fprintln(stderr, p)
	}
	if len(problems) > 0 {
		_, _ = fmt.Fprintf(stderr, "doclinks: %d broken links in %d files\n", len(problems), len(files))
		return 1
	}
	_, _ = fmt.Fprintf(stdout, "doclinks: every link in %d files leads somewhere\n", len(files))
	return 0
}

// docFiles lists the files to check, relative to root: the top-level *.md
// and docs/*.md, sorted.
func docFiles(root string) ([]string, error) {
	var files []string
	for _, pattern := range []string{"*.md", filepath.Join("docs", "*.md")} {
		m, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", pattern, err)
		}
		for _, f := range m {
			rel, err := filepath.Rel(root, f)
			if err != nil {
				return nil, fmt.Errorf("naming %s relative to %s: %w", f, root, err)
			}
			files = append(files, filepath.ToSlash(rel))
		}
	}
	sort.Strings(files)
	if len(files) == 0 {
		return nil, fmt.Errorf("no Markdown files in %s: run it from the root of the repository or give -root", root)
	}
	return files, nil
}

// Problem is one broken link: where it is, the link as written, and why
// it leads nowhere.
type Problem struct {
	// File is the Markdown file that holds the link, relative to the root.
	File string
	// Line is the link's line in File, from 1.
	Line int
	// Link is the link's destination as written.
	Link string
	// Reason says what is missing.
	Reason string
}

// String formats the problem as file:line: link: reason.
func (p Problem) String() string {
	return fmt.Sprintf("%s:%d: %s: %s", p.File, p.Line, p.Link, p.Reason)
}

// Link is a link's destination and the line it is on.
type Link struct {
	// Line is the link's line, from 1.
	Line int
	// Dest is the destination as written, without a title.
	Dest string
}

// checker checks files under one root, reading each Markdown target's
// headings once.
type checker struct {
	root    string
	anchors map[string]map[string]bool
}

func newChecker(root string) *checker {
	return &checker{root: root, anchors: map[string]map[string]bool{}}
}

// checkFile returns the broken links of the Markdown file file, a path
// relative to the root with forward slashes.
func (c *checker) checkFile(file string) ([]Problem, error) {
	src, err := os.ReadFile(filepath.Join(c.root, filepath.FromSlash(file)))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", file, err)
	}
	var problems []Problem
	for _, l := range Links(src) {
		reason, err := c.check(file, l.Dest)
		if err != nil {
			return nil, fmt.Errorf("checking %s:%d %s: %w", file, l.Line, l.Dest, err)
		}
		if reason != "" {
			problems = append(problems, Problem{File: file, Line: l.Line, Link: l.Dest, Reason: reason})
		}
	}
	return problems, nil
}

// schemeRE matches a destination that is an absolute URL (http:, https:,
// mailto: and any other scheme) or starts with //.
var schemeRE = regexp.MustCompile(`^([a-zA-Z][a-zA-Z0-9+.-]*:|//)`)

// check says why the link dest in file leads nowhere, or "" when it leads
// somewhere or is not relative.
func (c *checker) check(file, dest string) (string, error) {
	if schemeRE.MatchString(dest) {
		return "", nil
	}
	target, anchor, _ := strings.Cut(dest, "#")
	target, _, _ = strings.Cut(target, "?")
	path, err := url.PathUnescape(target)
	if err != nil {
		return fmt.Sprintf("the path is not a valid URL path: %v", err), nil
	}
	switch {
	case path == "":
		path = file
	case strings.HasPrefix(path, "/"):
		path = strings.TrimPrefix(path, "/")
	default:
		path = filepath.ToSlash(filepath.Join(filepath.Dir(file), path))
	}
	if path == ".." || strings.HasPrefix(path, "../") {
		return "leads out of the repository", nil
	}
	info, err := os.Stat(filepath.Join(c.root, filepath.FromSlash(path)))
	if os.IsNotExist(err) {
		return fmt.Sprintf("no file or directory %s", path), nil
	}
	if err != nil {
		return "", fmt.Errorf("looking for %s: %w", path, err)
	}
	if anchor == "" || info.IsDir() || !strings.EqualFold(filepath.Ext(path), ".md") {
		return "", nil
	}
	if anchor, err = url.PathUnescape(anchor); err != nil {
		return fmt.Sprintf("the anchor is not valid URL text: %v", err), nil
	}
	anchors, err := c.anchorsOf(path)
	if err != nil {
		return "", err
	}
	if !anchors[anchor] {
		return fmt.Sprintf("no heading of %s has the anchor #%s", path, anchor), nil
	}
	return "", nil
}

// anchorsOf returns the anchors of the headings of the Markdown file path.
func (c *checker) anchorsOf(path string) (map[string]bool, error) {
	if a, ok := c.anchors[path]; ok {
		return a, nil
	}
	src, err := os.ReadFile(filepath.Join(c.root, filepath.FromSlash(path)))
	if err != nil {
		return nil, fmt.Errorf("reading the headings of %s: %w", path, err)
	}
	a := map[string]bool{}
	for _, s := range Anchors(Headings(src)) {
		a[s] = true
	}
	for _, s := range HTMLAnchors(src) {
		a[s] = true
	}
	c.anchors[path] = a
	return a, nil
}

var (
	// fenceRE matches the line that opens or closes a fenced code block.
	fenceRE = regexp.MustCompile("^[ \\t]*(`{3,}|~{3,})")
	// inlineLinkRE matches an inline link or image: [text](dest "title").
	inlineLinkRE = regexp.MustCompile(`!?\[[^\]]*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+("[^"]*"|'[^']*'))?\s*\)`)
	// refDefRE matches a link reference definition: [label]: dest.
	refDefRE = regexp.MustCompile(`^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)`)
	// atxRE matches an ATX heading: # Title.
	atxRE = regexp.MustCompile(`^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$`)
	// setextRE matches the underline of a setext heading.
	setextRE = regexp.MustCompile(`^ {0,3}(=+|-+)[ \t]*$`)
	// codeSpanRE matches a code span of one or more backticks.
	codeSpanRE = regexp.MustCompile("(`+)[^`]*?(`+)")
	// headingLinkRE matches a link in a heading, whose text alone counts.
	headingLinkRE = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
	// htmlAnchorRE matches an HTML element's id or an anchor's name,
	// which a link can target as it targets a heading.
	htmlAnchorRE = regexp.MustCompile(`<[a-zA-Z][^>]*\s(?:id|name)="([^"]+)"`)
	// tagRE matches an HTML tag in a heading.
	tagRE = regexp.MustCompile(`<[^>]+>`)
)

// lines calls f with each line of src outside fenced code blocks and its
// number, from 1.
func lines(src []byte, f func(n int, line string)) {
	s := bufio.NewScanner(bytes.NewReader(src))
	s.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	fence := ""
	for n := 1; s.Scan(); n++ {
		line := s.Text()
		if m := fenceRE.FindStringSubmatch(line); m != nil {
			switch {
			case fence == "":
				fence = m[1]
				continue
			case m[1][0] == fence[0] && len(m[1]) >= len(fence) && strings.TrimSpace(strings.TrimLeft(line, " \t"+fence[:1])) == "":
				fence = ""
				continue
			}
		}
		if fence != "" {
			continue
		}
		f(n, line)
	}
}

// blankCodeSpans replaces the text of each code span with spaces, so that
// what a span shows is never taken for a link.
func blankCodeSpans(line string) string {
	return codeSpanRE.ReplaceAllStringFunc(line, func(span string) string {
		return strings.Repeat(" ", len(span))
	})
}

// Links returns the destinations of the inline links, images and link
// reference definitions of a Markdown document, outside code.
func Links(src []byte) []Link {
	var links []Link
	lines(src, func(n int, line string) {
		line = blankCodeSpans(line)
		for _, m := range inlineLinkRE.FindAllStringSubmatch(line, -1) {
			links = append(links, Link{Line: n, Dest: strings.Trim(m[1], "<>")})
		}
		if m := refDefRE.FindStringSubmatch(line); m != nil {
			links = append(links, Link{Line: n, Dest: strings.Trim(m[1], "<>")})
		}
	})
	return links
}

// Headings returns the text of a Markdown document's headings, ATX and
// setext, outside fenced code blocks, in order.
func Headings(src []byte) []string {
	var headings []string
	prev := ""
	lines(src, func(_ int, line string) {
		switch m := atxRE.FindStringSubmatch(line); {
		case m != nil:
			headings = append(headings, m[2])
			line = ""
		case strings.TrimSpace(prev) != "" && setextRE.MatchString(line) && !strings.HasPrefix(strings.TrimSpace(prev), "|"):
			headings = append(headings, strings.TrimSpace(prev))
			line = ""
		}
		prev = line
	})
	return headings
}

// HTMLAnchors returns the ids and anchor names of a Markdown document's
// HTML elements, such as <a id="x"></a>, outside code.
func HTMLAnchors(src []byte) []string {
	var anchors []string
	lines(src, func(_ int, line string) {
		for _, m := range htmlAnchorRE.FindAllStringSubmatch(blankCodeSpans(line), -1) {
			anchors = append(anchors, m[1])
		}
	})
	return anchors
}

// Slug is the anchor GitHub gives a heading's text: link syntax and tags
// reduced to their text, lower case, every character but letters, digits,
// spaces, hyphens and underscores dropped, and each space a hyphen.
func Slug(heading string) string {
	heading = headingLinkRE.ReplaceAllString(heading, "$1")
	heading = tagRE.ReplaceAllString(heading, "")
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Anchors returns the anchors of headings in order: each heading's slug,
// and for a slug seen before, the slug followed by -1, -2 and so on.
func Anchors(headings []string) []string {
	seen := map[string]int{}
	anchors := make([]string, 0, len(headings))
	for _, h := range headings {
		s := Slug(h)
		if n := seen[s]; n > 0 {
			anchors = append(anchors, s+"-"+strconv.Itoa(n))
		} else {
			anchors = append(anchors, s)
		}
		seen[s]++
	}
	return anchors
}
