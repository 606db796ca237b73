package daemon

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/tributary-dev/tributary/test/harness"
)

// TestMain fails the run when a goroutine of this package outlives the tests:
// the supervisor, the rollout's watch and follow, and the status fan-out must
// each be stopped by whoever started them.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := harness.LeakedGoroutines(5*time.Second, "tributary/internal/daemon."); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines of internal/daemon still running after the tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}
