package harness

import (
	"runtime"
	"sort"
	"strings"
	"time"
)

// LeakedGoroutines waits up to timeout for the goroutines whose stacks
// contain any of marks (a package's "path/pkg." prefix, a library's module
// path) to end, and returns the stacks of those that did not, sorted; ""
// when none is left. Goroutines running TestMain are ignored. Packages call it
// from TestMain after m.Run, so that whoever starts a goroutine stops it.
func LeakedGoroutines(timeout time.Duration, marks ...string) string {
	deadline := time.Now().Add(timeout)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "TestMain") || strings.Contains(g, "harness.LeakedGoroutines") {
				continue
			}
			for _, m := range marks {
				if strings.Contains(g, m) {
					leaked = append(leaked, g)
					break
				}
			}
		}
		if len(leaked) == 0 {
			return ""
		}
		if time.Now().After(deadline) {
			sort.Strings(leaked)
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
