package telemetry

import (
	"testing"

	"go.opentelemetry.io/otel"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// Errors of private pipelines (NoGlobal) go to the global handler,
	// which prints them; the tests check them through metrics and logs.
	otel.SetErrorHandler(discardErrors{})
	goleak.VerifyTestMain(m)
}

// discardErrors is a comparable error handler that drops everything.
type discardErrors struct{}

func (discardErrors) Handle(error) {}
