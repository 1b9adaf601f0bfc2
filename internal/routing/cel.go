package routing

import (
	"context"
	"errors"
	"fmt"
	"path"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/ext"
)

// Bounds of a match expression's evaluation, so that no expression can hold
// up the controller: its cost (about one unit per operation) and its time.
const (
	costLimit   = 1_000_000
	evalTimeout = time.Second
)

// celEnv is the environment match expressions compile in: `problem`, typed as
// a Problem with its JSON field names, and the strings and sets extensions.
var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		ext.NativeTypes(reflect.TypeFor[Problem](), ext.ParseStructTag("json")),
		cel.Variable("problem", cel.ObjectType(celTypeName(reflect.TypeFor[Problem]()))),
		ext.Strings(),
		ext.Sets(),
	)
})

// celTypeName is the name ext.NativeTypes gives a Go type: its package's name and its own.
func celTypeName(t reflect.Type) string {
	return path.Base(t.PkgPath()) + "." + t.Name()
}

// compileExpression type-checks a match expression against the Problem type
// and plans its evaluation.
func compileExpression(expr string) (cel.Program, error) {
	env, err := celEnv()
	if err != nil {
		return nil, fmt.Errorf("creating CEL environment: %w", err)
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return nil, issuesError(iss)
	}
	if !ast.OutputType().IsExactType(cel.BoolType) {
		return nil, fmt.Errorf("must be a bool expression, not %s", ast.OutputType())
	}
	prg, err := env.Program(ast,
		cel.CostLimit(costLimit),
		cel.InterruptCheckFrequency(100),
	)
	if err != nil {
		return nil, fmt.Errorf("planning expression: %w", err)
	}
	return prg, nil
}

// issuesError turns CEL's compile errors into one line, each error at its
// line and column (1-based): "1:8: undefined field 'titel'".
func issuesError(iss *cel.Issues) error {
	msgs := make([]string, 0, len(iss.Errors()))
	for _, e := range iss.Errors() {
		msgs = append(msgs, fmt.Sprintf("%d:%d: %s", e.Location.Line(), e.Location.Column()+1, e.Message))
	}
	return errors.New(strings.Join(msgs, "; "))
}

// evalExpression evaluates a compiled match expression for a problem.
func evalExpression(prg cel.Program, p *Problem) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), evalTimeout)
	defer cancel()
	out, _, err := prg.ContextEval(ctx, map[string]any{"problem": p})
	if err != nil {
		return false, fmt.Errorf("evaluating spec.match.expression: %w", err)
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, errors.New("evaluating spec.match.expression: result is not a bool")
	}
	return b, nil
}
