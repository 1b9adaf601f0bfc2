package routing

import (
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
)

// A template is written by a route's author, a tenant, and runs inside the
// manager, beside every other tenant's events. So each render has a budget:
// its output (MaxRenderedBytes), the values it builds (MaxRenderValueBytes),
// its loops and template calls (MaxRenderSteps), its time (MaxRenderTime),
// and the widths printf pads to (MaxFormatWidth). text/template cannot be
// interrupted from outside, so the budget is checked from inside: every
// range body and every defined template starts with a call to stepFunc,
// every function that builds a value is one of renderBudget.funcMap, which
// charge what they build before building it, and every method called with
// arguments is followed by valueFunc, which charges what it returned. Each
// check fails the render once the budget is spent.
const (
	// MaxRenderValueBytes bounds the bytes of the values one render builds,
	// added up over the render and never given back, so that it bounds what
	// a render allocates, not only what it holds: with no loop,
	// {{$s = print $s $s}} 25 times over would build 256 MiB. It is 16
	// times MaxRenderedBytes. That leaves room for values well past what a
	// template can output, such as json of the largest problem the API
	// admits (about 300 KB) kept in a variable to be cut down; a template
	// that builds more is not building a message. And it keeps what one
	// render allocates to a few MiB: fmt's buffers hold a value once or
	// twice more while it is built.
	MaxRenderValueBytes = 16 * MaxRenderedBytes
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

// stepFunc and valueFunc are the functions the budget's checks call. Their
// names cannot be written in a template that parses (they start with an
// underscore and are not in the function map templates are parsed with),
// so a route's author can neither call nor shadow them.
const (
	stepFunc  = "_problemhookStep"
	valueFunc = "_problemhookValue"
)

var (
	errTooManySteps = fmt.Errorf("the template loops or calls templates more than %d times", MaxRenderSteps)
	errTooLarge     = fmt.Errorf("the template's values exceed %d bytes", MaxRenderValueBytes)
	errTooSlow      = fmt.Errorf("the template ran longer than %s", MaxRenderTime)
)

// renderBudget is what one render may still spend.
type renderBudget struct {
	steps    int
	bytes    int
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
	case b.spent != nil:
	case b.steps > MaxRenderSteps:
		b.spent = errTooManySteps
	case b.steps%64 == 0 && time.Now().After(b.deadline):
		b.spent = errTooSlow
	}
	return "", b.spent
}

// charge spends n bytes of values, or gives back what a reservation did not
// use when n is negative, and fails once the bytes or the time are spent.
// Unlike step it looks at the clock every time: one call may work through
// a value of a MiB, where a step only starts a loop's body.
func (b *renderBudget) charge(n int) error {
	b.bytes += n
	switch {
	case b.spent != nil:
	case b.bytes > MaxRenderValueBytes:
		b.spent = errTooLarge
	case time.Now().After(b.deadline):
		b.spent = errTooSlow
	}
	return b.spent
}

// build charges what fn builds. It reserves the most fn can build before
// fn allocates anything, so that a value past the budget is refused before
// it exists; then it charges what fn built instead, which is more than
// the reservation only where fn printed values of the problem, whose size
// the template does not choose.
func (b *renderBudget) build(reserve int, fn func() (string, error)) (string, error) {
	if err := b.charge(reserve); err != nil {
		return "", err
	}
	s, err := fn()
	if err != nil {
		return "", err
	}
	if err := b.charge(len(s) - reserve); err != nil {
		return "", err
	}
	return s, nil
}

// value is valueFunc: it charges what a method called with arguments
// returned, and returns it as it is. text/template calls methods itself,
// so this can only come after: {{.ReceivedAt.Format $layout}} builds a
// string from one a template may have grown, at most a few times as long.
func (b *renderBudget) value(v reflect.Value) (reflect.Value, error) {
	n := 0
	switch u := indirectInterface(v); {
	case !u.IsValid():
	case u.Kind() == reflect.String, u.Kind() == reflect.Slice && u.Type().Elem().Kind() == reflect.Uint8:
		n = u.Len()
	}
	return v, b.charge(n)
}

// indirectInterface is the value inside v, an interface or not.
func indirectInterface(v reflect.Value) reflect.Value {
	for v.IsValid() && v.Kind() == reflect.Interface && !v.IsNil() {
		v = v.Elem()
	}
	return v
}

// funcMap holds the functions of one render: the budget's checks, and
// those of funcs and text/template's builtins that build a string, each
// charging b for what it builds. secret is the secret function (nil:
// noSecrets). A template can grow strings (and with time's AppendFormat
// byte slices), nothing else: the reservations count the strings among the
// arguments, times how much the function can grow them. The builtins left
// out build nothing: index and slice return a part of their argument, len,
// not, and, or and the comparisons a number, a bool or an argument, and
// call has no function to call, as nothing a template reaches holds one.
func (b *renderBudget) funcMap(secret func(string) (string, error)) template.FuncMap {
	if secret == nil {
		secret = noSecrets
	}
	return template.FuncMap{
		stepFunc:  b.step,
		valueFunc: b.value,

		"print":    b.prints(1, fmt.Sprint),
		"println":  b.prints(1, fmt.Sprintln),
		"html":     b.prints(5, template.HTMLEscaper),     // &#34; for "
		"js":       b.prints(6, template.JSEscaper),       // \u003C for <
		"urlquery": b.prints(3, template.URLQueryEscaper), // %3C for <
		"printf":   b.printf,

		"json": func(v any) (string, error) {
			return b.build(jsonBound(v), func() (string, error) { return jsonString(v) })
		},
		"join": func(sep string, list []string) (string, error) {
			n := 0
			for _, s := range list {
				n += len(sep) + len(s)
			}
			return b.build(n, func() (string, error) { return joinStrings(sep, list), nil })
		},
		// Invalid UTF-8 comes out as U+FFFD, three bytes for one.
		"upper":      b.grows(3, strings.ToUpper),
		"lower":      b.grows(3, strings.ToLower),
		"pathEscape": b.grows(3, url.PathEscape),
		"truncate": func(n int, s string) (string, error) {
			return b.build(0, func() (string, error) { return truncateRunes(n, s), nil })
		},
		"secret": func(key string) (string, error) {
			return b.build(len(key), func() (string, error) { return secret(key) })
		},
	}
}

// prints wraps fn, which prints its arguments as fmt.Sprint does and then
// makes each byte at most growth bytes.
func (b *renderBudget) prints(growth int, fn func(...any) string) func(...any) (string, error) {
	return func(args ...any) (string, error) {
		return b.build(growth*printBound(args), func() (string, error) { return fn(args...), nil })
	}
}

// grows wraps fn, which makes each byte of its argument at most growth
// bytes.
func (b *renderBudget) grows(growth int, fn func(string) string) func(string) (string, error) {
	return func(s string) (string, error) {
		return b.build(growth*len(s), func() (string, error) { return fn(s), nil })
	}
}

// printf is text/template's printf with its widths and precisions bounded
// by MaxFormatWidth; a width taken from an argument (*) is refused. What
// it builds is reserved from the format's shape.
func (b *renderBudget) printf(format string, args ...any) (string, error) {
	shape, err := checkFormat(format)
	if err != nil {
		return "", err
	}
	return b.build(shape.bound(format, args), func() (string, error) { return fmt.Sprintf(format, args...), nil })
}

// printBound is at most how many bytes fmt.Sprint or fmt.Sprintln prints
// for the strings among args and the spaces between them.
func printBound(args []any) int {
	n := len(args)
	for _, a := range args {
		n += stringBytes(a)
	}
	return n
}

// stringBytes is at most how many bytes fmt's %v prints for a string or a
// []byte ([104 105]: four for one); 0 for anything else.
func stringBytes(a any) int {
	switch a := a.(type) {
	case string:
		return len(a)
	case []byte:
		return 4 * len(a)
	}
	return 0
}

// jsonBound is at most how many bytes json builds for a string (\u0000 for
// a control byte) or a []byte (base64); 0 for anything else.
func jsonBound(v any) int {
	switch v := v.(type) {
	case string:
		return 6*len(v) + 2
	case []byte:
		return 2*len(v) + 2
	}
	return 0
}

// execute renders t for data within a fresh budget, into a buffer that
// refuses to grow past MaxRenderedBytes, with secret as the secret
// function (nil: noSecrets).
func execute(t *template.Template, data any, secret func(string) (string, error)) (string, error) {
	b := newRenderBudget()
	// A clone has function maps of its own, so concurrent renders of one
	// compiled route each spend their own budget.
	c, err := t.Clone()
	if err != nil {
		return "", err
	}
	c.Funcs(b.funcMap(secret))
	w := &boundedWriter{max: MaxRenderedBytes}
	if err := c.Execute(w, data); err != nil {
		if b.spent != nil {
			// Where the check sat says nothing to the template's author.
			return "", b.spent
		}
		return "", err
	}
	if time.Now().After(b.deadline) {
		return "", errTooSlow
	}
	return w.buf.String(), nil
}

// instrument puts a budget check at the start of every range body and of
// every template of t, the only ways a template repeats work, and after
// every call of a method with arguments, the only values a template builds
// other than through its functions.
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
		case *parse.ActionNode:
			chargeMethods(n.Pipe)
		case *parse.TemplateNode:
			chargeMethods(n.Pipe)
		case *parse.RangeNode:
			chargeMethods(n.Pipe)
			if n.List == nil {
				n.List = &parse.ListNode{NodeType: parse.NodeList, Pos: n.Pos}
			}
			prependStep(n.List)
			instrumentList(n.List)
			instrumentList(n.ElseList)
		case *parse.IfNode:
			chargeMethods(n.Pipe)
			instrumentList(n.List)
			instrumentList(n.ElseList)
		case *parse.WithNode:
			chargeMethods(n.Pipe)
			instrumentList(n.List)
			instrumentList(n.ElseList)
		}
	}
}

// prependStep makes {{_problemhookStep}} the first node of list.
func prependStep(list *parse.ListNode) {
	pipe := &parse.PipeNode{NodeType: parse.NodePipe, Pos: list.Pos, Cmds: []*parse.CommandNode{budgetCommand(stepFunc, list.Pos)}}
	action := &parse.ActionNode{NodeType: parse.NodeAction, Pos: list.Pos, Pipe: pipe}
	list.Nodes = append([]parse.Node{action}, list.Nodes...)
}

// chargeMethods puts | _problemhookValue after every command of pipe, and
// of the pipelines within it, that calls a method with arguments: given
// as its own ({{.ReceivedAt.Format $layout}}) or piped into it
// ({{$layout | .ReceivedAt.Format}}). A method without arguments builds
// nothing a template could have grown.
func chargeMethods(pipe *parse.PipeNode) {
	if pipe == nil {
		return
	}
	cmds := make([]*parse.CommandNode, 0, len(pipe.Cmds))
	for i, cmd := range pipe.Cmds {
		for _, arg := range cmd.Args {
			chargeMethodsIn(arg)
		}
		cmds = append(cmds, cmd)
		if callsMethod(cmd, i > 0) {
			cmds = append(cmds, budgetCommand(valueFunc, cmd.Pos))
		}
	}
	pipe.Cmds = cmds
}

func chargeMethodsIn(arg parse.Node) {
	switch a := arg.(type) {
	case *parse.PipeNode:
		chargeMethods(a)
	case *parse.ChainNode:
		chargeMethodsIn(a.Node)
	}
}

// callsMethod reports whether cmd calls a method (or a field, which fails)
// with arguments; piped says a command before it passes its value.
func callsMethod(cmd *parse.CommandNode, piped bool) bool {
	if len(cmd.Args) < 2 && !piped {
		return false
	}
	switch a := cmd.Args[0].(type) {
	case *parse.FieldNode, *parse.ChainNode:
		return true
	case *parse.VariableNode:
		return len(a.Ident) > 1
	}
	return false
}

// budgetCommand is a command that calls the budget's check name.
func budgetCommand(name string, pos parse.Pos) *parse.CommandNode {
	ident := parse.NewIdentifier(name).SetPos(pos)
	return &parse.CommandNode{NodeType: parse.NodeCommand, Pos: pos, Args: []parse.Node{ident}}
}

// formatShape is what printf builds from a format, besides its arguments.
type formatShape struct {
	// verbs counts the format's verbs, %% left out.
	verbs int
	// indexed says a verb names its argument (%[2]s), which it may print
	// again.
	indexed bool
	// growth is the most bytes a verb prints for one byte of a string: 5
	// when one escapes or encodes (% #x prints 0x41 for A), else 1.
	growth int
}

// bound is at most how many bytes printf builds from format and args: the
// format's text, each verb padded to MaxFormatWidth, a note of fmt's for
// each verb and argument that do not fit (%!d(string=...), %!(EXTRA ...)),
// and what the verbs make of the strings among args: each once, or when
// verbs name their arguments the longest for every verb.
func (f formatShape) bound(format string, args []any) int {
	const note = 16
	n := len(format) + f.verbs*MaxFormatWidth + (f.verbs+len(args)+1)*note
	sum, longest := 0, 0
	for _, a := range args {
		m := 0
		switch a := a.(type) {
		case string:
			m = f.growth * len(a)
		case []byte:
			// Some verbs print each byte on its own: %256d pads each.
			m = (MaxFormatWidth + note) * len(a)
		}
		sum += m
		longest = max(longest, m)
	}
	if f.indexed {
		return n + f.verbs*longest
	}
	return n + sum
}

// checkFormat refuses a format whose verbs pad or round past
// MaxFormatWidth, or take a width or precision from an argument, and
// returns the shape of one it accepts.
func checkFormat(format string) (formatShape, error) {
	shape := formatShape{growth: 1}
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		n, sharp := 0, false
		for i++; i < len(format); i++ {
			c := format[i]
			switch {
			case c >= '0' && c <= '9':
				n = n*10 + int(c-'0')
				if n > MaxFormatWidth {
					return shape, fmt.Errorf("printf: a width or precision in %q is larger than %d", format, MaxFormatWidth)
				}
				continue
			case c == '*':
				return shape, fmt.Errorf("printf: %q takes a width or precision from an argument (*), which templates may not", format)
			case c == '.' || c == '[' || c == ']' || c == '+' || c == '-' || c == '#' || c == ' ':
				shape.indexed = shape.indexed || c == '['
				sharp = sharp || c == '#'
				n = 0
				continue
			}
			break // the verb, or %%
		}
		if i == len(format) || format[i] == '%' {
			continue
		}
		shape.verbs++
		if c := format[i]; c == 'q' || c == 'x' || c == 'X' || c == 'v' && sharp {
			shape.growth = 5
		}
	}
	return shape, nil
}
