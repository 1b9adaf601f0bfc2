package main

import (
	"strings"
)

// slug is the HTML id of the table of the object at path of a kind.
func slug(anchor, path string) string {
	var b strings.Builder
	b.WriteString(anchor)
	dash := true
	for _, r := range strings.ToLower(path) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			if dash {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
		} else {
			dash = true
		}
	}
	return b.String()
}

// codeList formats each of values as code, separated by commas.
func codeList(values []string) string {
	codes := make([]string, len(values))
	for i, v := range values {
		codes[i] = code(v)
	}
	return strings.Join(codes, ", ")
}

// code formats s as a Markdown code span that is safe in a table cell.
func code(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		s = " " + s + " "
	}
	return fence + cell(s) + fence
}

// cell escapes the pipes of s, which would otherwise end a table cell,
// even inside a code span.
func cell(s string) string {
	return strings.ReplaceAll(s, "|", `\|`)
}

// text makes a description one line of Markdown that is safe in a table
// cell: whitespace collapsed, pipes escaped, and "<" outside code spans
// escaped so that placeholders such as <name> are not taken for HTML.
func text(s string) string {
	s = cell(strings.Join(strings.Fields(s), " "))
	var b strings.Builder
	for s != "" {
		i := strings.IndexAny(s, "<`")
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		s = s[i:]
		if s[0] == '<' {
			b.WriteString("&lt;")
			s = s[1:]
			continue
		}
		// A run of n backticks opens a code span that the next run of
		// exactly n backticks closes; without one it is literal text.
		n := len(s) - len(strings.TrimLeft(s, "`"))
		fence := s[:n]
		end := closingFence(s[n:], n)
		if end < 0 {
			b.WriteString(fence)
			s = s[n:]
			continue
		}
		b.WriteString(s[:n+end+n])
		s = s[n+end+n:]
	}
	return b.String()
}

// closingFence returns the index in s of the first run of exactly n
// backticks, or -1.
func closingFence(s string, n int) int {
	for i := 0; i < len(s); {
		if s[i] != '`' {
			i++
			continue
		}
		j := i
		for j < len(s) && s[j] == '`' {
			j++
		}
		if j-i == n {
			return i
		}
		i = j
	}
	return -1
}
