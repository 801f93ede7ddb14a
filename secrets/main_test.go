package secrets

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// Safety net: no test may reach the EC2 instance metadata service.
	// Tests set static AWS credentials and a loopback endpoint.
	_ = os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	goleak.VerifyTestMain(m)
}
