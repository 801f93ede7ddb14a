package scaling

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidConfig is matched (errors.Is) by every error that
// Config.Validate and New return for a bad scaling section, including a bad
// scaling.expression.
var ErrInvalidConfig = errors.New("scaling: invalid scaling config")

// ErrInvalidExpression is matched (errors.Is) by the *ExpressionError of an
// expression that does not parse, does not type-check, names an unknown
// signal or does not produce a number.
var ErrInvalidExpression = errors.New("scaling: invalid scaling.expression")

// ErrUnknownSignal is matched (errors.Is) by the error of Set or Source for
// a name that is neither a built-in component nor a custom component
// registered with WithCustom. Component names become metric labels, so the
// set is fixed when the Pressure is built.
var ErrUnknownSignal = errors.New("scaling: unknown signal")

// ErrInvalidOption is matched (errors.Is) by the error New returns for a
// bad option, such as a WithCustom name that is not a valid component name
// or a WithSource for an unknown signal.
var ErrInvalidOption = errors.New("scaling: invalid option")

// ErrNilPressure is returned by the methods of a nil *Pressure that return
// an error.
var ErrNilPressure = errors.New("scaling: nil *Pressure; build one with scaling.New")

// ConfigError is one problem found in a scaling section. It matches
// ErrInvalidConfig with errors.Is.
type ConfigError struct {
	// Key is the full config key, for example "scaling.memory_gate" or
	// "scaling.weights.cpu".
	Key string
	// Msg is the whole message: what is wrong with Key, the value found,
	// and the fix.
	Msg string
}

// Error returns Msg.
func (e *ConfigError) Error() string { return e.Msg }

// Is reports whether target is ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// ExpressionIssue is one problem CEL found in an expression, at a position
// in its text.
type ExpressionIssue struct {
	// Line is the line of the problem, counted from 1.
	Line int
	// Column is the column of the problem, counted from 1.
	Column int
	// Msg says what is wrong there.
	Msg string
}

// String formats the issue as "line:column: message".
func (i ExpressionIssue) String() string {
	return fmt.Sprintf("%d:%d: %s", i.Line, i.Column, i.Msg)
}

// ExpressionError reports a scaling.expression that cannot be used: a
// syntax error, a type error, an unknown signal name, a result that is not
// a number, or an expression too large or too costly. It is a start-up
// error; it matches both ErrInvalidExpression and ErrInvalidConfig with
// errors.Is.
type ExpressionError struct {
	// Expression is the text as configured.
	Expression string
	// Line and Column locate the first issue, both counted from 1.
	Line, Column int
	// Issues lists every problem found, in order of position. It has at
	// least one entry.
	Issues []ExpressionIssue
}

// Error names the key, the position of every issue, the expression and a
// hint for the usual mistakes.
func (e *ExpressionError) Error() string {
	var b strings.Builder
	b.WriteString("scaling.expression: ")
	for i, is := range e.Issues {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(is.String())
	}
	fmt.Fprintf(&b, " in %q", truncate(e.Expression, 200))
	hint := "fix the expression or remove scaling.expression to use the weighted formula"
	for _, is := range e.Issues {
		if strings.Contains(is.Msg, "undeclared reference") {
			hint = "only the component signals (" + strings.Join(builtinNames(), ", ") +
				", and custom components) and the functions max, min, abs and clamp exist; " + hint
			break
		}
	}
	b.WriteString(": ")
	b.WriteString(hint)
	return b.String()
}

// Is reports whether target is ErrInvalidExpression or ErrInvalidConfig.
func (e *ExpressionError) Is(target error) bool {
	return target == ErrInvalidExpression || target == ErrInvalidConfig
}

// UnknownSignalError is the error of Set or Source for a name the Pressure
// does not know. It matches ErrUnknownSignal with errors.Is.
type UnknownSignalError struct {
	// Name is the name asked for.
	Name string
	// Known lists the names the Pressure accepts, built-in first.
	Known []string
}

// Error names the signal, the accepted names and the fix.
func (e *UnknownSignalError) Error() string {
	return fmt.Sprintf("scaling: unknown signal %q (known: %s); register it with scaling.WithCustom when building the Pressure",
		truncate(e.Name, 64), strings.Join(e.Known, ", "))
}

// Is reports whether target is ErrUnknownSignal.
func (e *UnknownSignalError) Is(target error) bool { return target == ErrUnknownSignal }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
