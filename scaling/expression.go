package scaling

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/env"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/interpreter"
)

// Limits of the expression language. The language has no loops or
// comprehensions, so the cost of an evaluation is bounded by the size of
// the expression; the cost limit is a second guard, checked against CEL's
// estimate at start-up and enforced while evaluating.
const (
	// ExpressionCostLimit is the largest CEL cost one evaluation may use.
	ExpressionCostLimit = 10_000
	// maxExpressionNodes bounds the syntax tree.
	maxExpressionNodes = 1000
	// maxExpressionNesting bounds the nesting of calls and parentheses.
	maxExpressionNesting = 64
	// maxVariadic is the most arguments max and min take.
	maxVariadic = 8
)

// baseEnv is the expression environment without signal variables. It is
// built once: it holds no mutable state, and Extend derives the
// environment of each Pressure from it.
var baseEnv = sync.OnceValues(newBaseEnv)

func newBaseEnv() (*cel.Env, error) {
	// The standard library is cut down to logic and comparison; arithmetic
	// and the numeric functions are declared below over doubles only.
	// There are no macros (no has, all, exists, map, filter), no strings
	// functions, no regular expressions, no time functions and no type
	// conversions.
	std := env.NewLibrarySubset().SetDisableMacros(true).AddIncludedFunctions(
		&env.Function{Name: operators.Conditional},
		&env.Function{Name: operators.LogicalAnd},
		&env.Function{Name: operators.LogicalOr},
		&env.Function{Name: operators.LogicalNot},
		&env.Function{Name: operators.Equals},
		&env.Function{Name: operators.NotEquals},
		&env.Function{Name: operators.Less},
		&env.Function{Name: operators.LessEquals},
		&env.Function{Name: operators.Greater},
		&env.Function{Name: operators.GreaterEquals},
		&env.Function{Name: operators.Negate},
	)
	opts := []cel.EnvOption{
		cel.StdLib(cel.StdLibSubset(std)),
		cel.ParserExpressionSizeLimit(MaxExpressionLength),
		cel.ParserRecursionLimit(maxExpressionNesting),
		cel.ExpressionNodeLimit(maxExpressionNodes),
		binaryDouble(operators.Add, "add", func(a, b float64) float64 { return a + b }),
		binaryDouble(operators.Subtract, "subtract", func(a, b float64) float64 { return a - b }),
		binaryDouble(operators.Multiply, "multiply", func(a, b float64) float64 { return a * b }),
		binaryDouble(operators.Divide, "divide", func(a, b float64) float64 { return a / b }),
		cel.Function("abs", cel.Overload("scaling_abs_double", []*cel.Type{cel.DoubleType}, cel.DoubleType,
			cel.UnaryBinding(func(v ref.Val) ref.Val { return types.Double(math.Abs(dbl(v))) }))),
		cel.Function("clamp", cel.Overload("scaling_clamp_double",
			[]*cel.Type{cel.DoubleType, cel.DoubleType, cel.DoubleType}, cel.DoubleType,
			cel.FunctionBinding(func(args ...ref.Val) ref.Val {
				v, lo, hi := dbl(args[0]), dbl(args[1]), dbl(args[2])
				if lo > hi {
					return types.NewErr("clamp(x, lo, hi): lo %v is above hi %v", lo, hi)
				}
				return types.Double(math.Min(math.Max(v, lo), hi))
			}))),
		variadicDouble("max", math.Max),
		variadicDouble("min", math.Min),
	}
	return cel.NewCustomEnv(opts...)
}

func dbl(v ref.Val) float64 {
	if d, ok := v.(types.Double); ok {
		return float64(d)
	}
	return math.NaN()
}

func binaryDouble(op, id string, f func(a, b float64) float64) cel.EnvOption {
	return cel.Function(op, cel.Overload("scaling_"+id+"_double",
		[]*cel.Type{cel.DoubleType, cel.DoubleType}, cel.DoubleType,
		cel.BinaryBinding(func(a, b ref.Val) ref.Val { return types.Double(f(dbl(a), dbl(b))) })))
}

// variadicDouble declares name over 2..maxVariadic doubles, folding f.
func variadicDouble(name string, f func(a, b float64) float64) cel.EnvOption {
	var fo []cel.FunctionOpt
	for n := 2; n <= maxVariadic; n++ {
		args := make([]*cel.Type, n)
		for i := range args {
			args[i] = cel.DoubleType
		}
		id := fmt.Sprintf("scaling_%s_double_%d", name, n)
		if n == 2 {
			fo = append(fo, cel.Overload(id, args, cel.DoubleType,
				cel.BinaryBinding(func(a, b ref.Val) ref.Val { return types.Double(f(dbl(a), dbl(b))) })))
			continue
		}
		fo = append(fo, cel.Overload(id, args, cel.DoubleType,
			cel.FunctionBinding(func(vs ...ref.Val) ref.Val {
				acc := dbl(vs[0])
				for _, v := range vs[1:] {
					acc = f(acc, dbl(v))
				}
				return types.Double(acc)
			})))
	}
	return cel.Function(name, fo...)
}

// parseExpression checks the syntax of src only.
func parseExpression(src string) error {
	e, err := baseEnv()
	if err != nil {
		return fmt.Errorf("scaling: building the expression environment: %w", err)
	}
	if _, iss := e.Parse(src); iss.Err() != nil {
		return issuesError(src, iss)
	}
	return nil
}

// expression is a compiled scaling.expression.
type expression struct {
	src  string
	prg  cel.Program
	vars map[string]int // variable name -> index in the values slice
}

// compileExpression parses, type-checks and plans src with one double
// variable per name. Every number literal is read as a double, so that
// "cpu * 100" and "lag > 0 ? 100 : 0" mean what they say.
func compileExpression(src string, names []string, costLimit uint64) (*expression, error) {
	if len(src) > MaxExpressionLength {
		return nil, &ConfigError{
			Key: Section + ".expression",
			Msg: fmt.Sprintf("%s.expression is %d bytes long, more than the %d allowed; shorten it", Section, len(src), MaxExpressionLength),
		}
	}
	base, err := baseEnv()
	if err != nil {
		return nil, fmt.Errorf("scaling: building the expression environment: %w", err)
	}
	vars := make(map[string]int, len(names))
	decls := make([]cel.EnvOption, 0, len(names))
	for i, n := range names {
		vars[n] = i
		decls = append(decls, cel.Variable(n, cel.DoubleType))
	}
	e, err := base.Extend(decls...)
	if err != nil {
		return nil, fmt.Errorf("scaling: declaring the signals %v for scaling.expression: %w", names, err)
	}
	parsed, iss := e.Parse(src)
	if iss.Err() != nil {
		return nil, issuesError(src, iss)
	}
	literalsToDouble(parsed.NativeRep().Expr())
	checked, iss := e.Check(parsed)
	if iss.Err() != nil {
		return nil, issuesError(src, iss)
	}
	root := checked.NativeRep()
	if k := checked.OutputType().Kind(); k != types.DoubleKind {
		return nil, positionedError(src, root, root.Expr().ID(),
			fmt.Sprintf("the expression yields %s, not a number; it must compute the pressure as a number (0 to 100)", checked.OutputType()))
	}
	est, err := e.EstimateCost(checked, zeroEstimator{})
	if err != nil {
		return nil, positionedError(src, root, root.Expr().ID(), "cannot estimate the cost: "+err.Error())
	}
	if est.Max > costLimit {
		return nil, positionedError(src, root, root.Expr().ID(),
			fmt.Sprintf("the expression may cost up to %d, more than the limit %d; simplify it", est.Max, costLimit))
	}
	prg, err := e.Program(checked,
		cel.CostLimit(costLimit),
		// Interrupts are checked in comprehensions only; the language has
		// none today, so this guards any that a later version allows.
		cel.InterruptCheckFrequency(16),
		cel.EvalOptions(cel.OptOptimize),
	)
	if err != nil {
		return nil, positionedError(src, root, root.Expr().ID(), "cannot plan the expression: "+err.Error())
	}
	return &expression{src: src, prg: prg, vars: vars}, nil
}

// literalsToDouble rewrites every int and uint literal of the tree into a
// double literal with the same id (and so the same position).
func literalsToDouble(root celast.Expr) {
	fac := celast.NewExprFactory()
	celast.PostOrderVisit(root, celast.NewExprVisitor(func(e celast.Expr) {
		if e.Kind() != celast.LiteralKind {
			return
		}
		switch v := e.AsLiteral().(type) {
		case types.Int:
			e.SetKindCase(fac.NewLiteral(e.ID(), types.Double(float64(v))))
		case types.Uint:
			e.SetKindCase(fac.NewLiteral(e.ID(), types.Double(float64(v))))
		}
	}))
}

// eval runs the expression over vals (indexed like the names given to
// compileExpression) and returns its finite result.
func (x *expression) eval(ctx context.Context, vals []float64) (float64, error) {
	out, _, err := x.prg.ContextEval(ctx, &activation{vars: x.vars, vals: vals})
	if err != nil {
		return 0, err
	}
	d, ok := out.(types.Double)
	if !ok {
		return 0, fmt.Errorf("the expression yielded %v of type %s, not a number", out, out.Type())
	}
	f := float64(d)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("the expression yielded %v (a division by zero?), not a finite number", f)
	}
	return f, nil
}

// activation resolves the signal variables without building a map.
type activation struct {
	vars map[string]int
	vals []float64
}

func (a *activation) ResolveName(name string) (any, bool) {
	i, ok := a.vars[name]
	if !ok {
		return nil, false
	}
	return types.Double(a.vals[i]), true
}

func (a *activation) Parent() interpreter.Activation { return nil }

// zeroEstimator gives no hints: every variable is a double, so CEL's own
// estimates are exact enough.
type zeroEstimator struct{}

func (zeroEstimator) EstimateSize(checker.AstNode) *checker.SizeEstimate { return nil }

func (zeroEstimator) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}

// issuesError turns CEL issues into an *ExpressionError.
func issuesError(src string, iss *cel.Issues) *ExpressionError {
	e := &ExpressionError{Expression: src}
	for _, ce := range iss.Errors() {
		line, col := position(ce.Location.Line(), ce.Location.Column())
		e.Issues = append(e.Issues, ExpressionIssue{Line: line, Column: col, Msg: ce.Message})
	}
	if len(e.Issues) == 0 {
		e.Issues = []ExpressionIssue{{Line: 1, Column: 1, Msg: iss.Err().Error()}}
	}
	slices.SortStableFunc(e.Issues, func(a, b ExpressionIssue) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Column - b.Column
	})
	e.Line, e.Column = e.Issues[0].Line, e.Issues[0].Column
	return e
}

// positionedError reports msg at the start of the node id.
func positionedError(src string, a *celast.AST, id int64, msg string) *ExpressionError {
	loc := a.SourceInfo().GetStartLocation(id)
	line, col := position(loc.Line(), loc.Column())
	return &ExpressionError{
		Expression: src, Line: line, Column: col,
		Issues: []ExpressionIssue{{Line: line, Column: col, Msg: msg}},
	}
}

// position turns CEL's line (from 1) and column (from 0) into a position
// counted from 1; an unknown position is the start of the expression.
func position(line, col0 int) (int, int) {
	if line < 1 {
		return 1, 1
	}
	return line, max(col0+1, 1)
}
