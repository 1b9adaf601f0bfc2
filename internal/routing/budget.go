package routing

import (
	"fmt"
	"text/template"
	"text/template/parse"
	"time"
)

// A template is written by a route's author, a tenant, and runs inside the
// manager, beside every other tenant's events. So each render has a budget:
// its output (MaxRenderedBytes), its loops and template calls
// (MaxRenderSteps), its time (MaxRenderTime), and the widths printf pads to
// (MaxFormatWidth). text/template cannot be interrupted from outside, so
// the budget is checked from inside: every range body and every defined
// template starts with a call to stepFunc, which fails the render once the
// budget is spent.
const (
	// MaxRenderSteps bounds the range iterations and template calls of
	// one render, whatever they range over: {{range 9223372036854775807}}
	// or three ranges over the impacted entities nested.
	MaxRenderSteps = 10000
	// MaxRenderTime bounds how long one render runs.
	MaxRenderTime = time.Second
	// MaxFormatWidth bounds the width and precision of printf's verbs:
	// {{printf "%999999d" 1}} would allocate a megabyte for one number.
	MaxFormatWidth = 256
)

// stepFunc is the function the budget's checks call. Its name cannot be
// written in a template that parses (it starts with an underscore and is
// not in the function map templates are parsed with), so a route's author
// can neither call nor shadow it.
const stepFunc = "_problemhookStep"

// renderBudget is what one render may still spend.
type renderBudget struct {
	steps    int
	deadline time.Time
	// spent is the error that ended the render, once the budget is spent.
	spent error
}

func newRenderBudget() *renderBudget {
	return &renderBudget{deadline: time.Now().Add(MaxRenderTime)}
}

// step spends one step, and fails once the steps or the time are spent.
func (b *renderBudget) step() (string, error) {
	b.steps++
	switch {
	case b.steps > MaxRenderSteps:
		b.spent = fmt.Errorf("the template loops or calls templates more than %d times", MaxRenderSteps)
	case b.steps%64 == 0 && time.Now().After(b.deadline):
		b.spent = fmt.Errorf("the template ran longer than %s", MaxRenderTime)
	}
	return "", b.spent
}

// execute renders t for data within a fresh budget, into a buffer that
// refuses to grow past MaxRenderedBytes.
func execute(t *template.Template, data any, extra template.FuncMap) (string, error) {
	b := newRenderBudget()
	// A clone has function maps of its own, so concurrent renders of one
	// compiled route each count their own steps.
	c, err := t.Clone()
	if err != nil {
		return "", err
	}
	c.Funcs(template.FuncMap{stepFunc: b.step})
	if extra != nil {
		c.Funcs(extra)
	}
	w := &boundedWriter{max: MaxRenderedBytes}
	if err := c.Execute(w, data); err != nil {
		if b.spent != nil {
			// Where the check sat says nothing to the template's author.
			return "", b.spent
		}
		return "", err
	}
	if time.Now().After(b.deadline) {
		return "", fmt.Errorf("the template ran longer than %s", MaxRenderTime)
	}
	return w.buf.String(), nil
}

// instrument puts a budget check at the start of every range body and of
// every template of t, the only ways a template repeats work.
func instrument(t *template.Template) {
	for _, tt := range t.Templates() {
		if tt.Tree == nil || tt.Root == nil {
			continue
		}
		prependStep(tt.Root)
		instrumentList(tt.Root)
	}
}

func instrumentList(list *parse.ListNode) {
	if list == nil {
		return
	}
	for _, n := range list.Nodes {
		switch n := n.(type) {
		case *parse.RangeNode:
			if n.List == nil {
				n.List = &parse.ListNode{NodeType: parse.NodeList, Pos: n.Pos}
			}
			prependStep(n.List)
			instrumentList(n.List)
			instrumentList(n.ElseList)
		case *parse.IfNode:
			instrumentList(n.List)
			instrumentList(n.ElseList)
		case *parse.WithNode:
			instrumentList(n.List)
			instrumentList(n.ElseList)
		}
	}
}

// prependStep makes {{_problemhookStep}} the first node of list.
func prependStep(list *parse.ListNode) {
	ident := parse.NewIdentifier(stepFunc).SetPos(list.Pos)
	cmd := &parse.CommandNode{NodeType: parse.NodeCommand, Pos: list.Pos, Args: []parse.Node{ident}}
	pipe := &parse.PipeNode{NodeType: parse.NodePipe, Pos: list.Pos, Cmds: []*parse.CommandNode{cmd}}
	action := &parse.ActionNode{NodeType: parse.NodeAction, Pos: list.Pos, Pipe: pipe}
	list.Nodes = append([]parse.Node{action}, list.Nodes...)
}

// boundedPrintf is text/template's printf with its widths and precisions
// bounded by MaxFormatWidth; a width taken from an argument (*) is refused.
func boundedPrintf(format string, args ...any) (string, error) {
	if err := checkFormat(format); err != nil {
		return "", err
	}
	return fmt.Sprintf(format, args...), nil
}

// checkFormat refuses a format whose verbs pad or round past MaxFormatWidth.
func checkFormat(format string) error {
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		n := 0
		for i++; i < len(format); i++ {
			c := format[i]
			switch {
			case c >= '0' && c <= '9':
				n = n*10 + int(c-'0')
				if n > MaxFormatWidth {
					return fmt.Errorf("printf: a width or precision in %q is larger than %d", format, MaxFormatWidth)
				}
				continue
			case c == '*':
				return fmt.Errorf("printf: %q takes a width or precision from an argument (*), which templates may not", format)
			case c == '.' || c == '[' || c == ']' || c == '+' || c == '-' || c == '#' || c == ' ':
				n = 0
				continue
			}
			break // the verb, or %%
		}
	}
	return nil
}
