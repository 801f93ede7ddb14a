package kafka

import (
	"errors"
	"fmt"

	"github.com/keel-go/keel/transport"
)

// name is the backend name in errors, logs, metrics and Name.
const name = "kafka"

// ErrWrongRole is returned (wrapped in a transport.ErrConfig error) when a
// Transport is used on the side its role did not build: Recv, Commit,
// Pause or Resume on a producer-only transport, Send on a consumer-only
// one.
var ErrWrongRole = errors.New("kafka: operation not available for this role")

// ErrUnknownOverride is wrapped by the error New and Config.Validate return
// for an overrides entry whose property name keel does not know. The error
// names the property.
var ErrUnknownOverride = errors.New("kafka: unknown override property")

// ErrInsecure is wrapped by the error returned for a plaintext connection or
// a disabled certificate check in production without allow_insecure.
var ErrInsecure = errors.New("kafka: insecure transport refused in production")

// configError returns a transport.ErrConfig error with the message.
func configError(format string, args ...any) error {
	return transport.NewError(transport.ErrConfig, name, "config", fmt.Errorf(format, args...))
}

func errClosed(op string) error {
	return transport.NewError(transport.ErrClosed, name, op, nil)
}

func wrongRole(op string, role Role, need string) error {
	return transport.NewError(transport.ErrConfig, name, op,
		fmt.Errorf("%w: %s.role is %q; %s needs role %s", ErrWrongRole, Section, role, op, need))
}
