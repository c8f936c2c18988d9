// Package skipreport makes the test groups that were skipped visible in the
// output of "go test ./...", which prints a passing package's output only
// with -v: a test that needs a missing server skips through Skip, and the
// package's TestMain calls Report once the tests ran, which writes one line
// per skipped group, saying why.
//
// The lines go to standard error (shown with -v, or by "go test" run in the
// package's directory) and, when KIWICACHE_SKIP_REPORT names a file, are
// appended to it: "make test" sets it and prints the file after the tests,
// whatever the packages' results.
package skipreport

import (
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
)

// EnvFile is the environment variable naming the file Report appends to.
const EnvFile = "KIWICACHE_SKIP_REPORT"

type group struct {
	reason string
	tests  []string
}

var (
	mu     sync.Mutex
	groups = map[string]*group{} // by name
)

// Skip records t as a test of the named group (e.g. "real redis-server"),
// which cannot run because of reason, and skips it with that reason.
func Skip(t testing.TB, name, reason string) {
	t.Helper()
	mu.Lock()
	g := groups[name]
	if g == nil {
		g = &group{reason: reason}
		groups[name] = g
	}
	g.tests = append(g.tests, t.Name())
	mu.Unlock()
	t.Skipf("%s test skipped: %s", name, reason)
}

// Report writes one line per group skipped so far, naming pkg, to standard
// error and to the file that KIWICACHE_SKIP_REPORT names, if set. It writes
// nothing when no test was skipped through Skip.
func Report(pkg string) {
	lines := Lines(pkg)
	if len(lines) == 0 {
		return
	}
	out := strings.Join(lines, "\n") + "\n"
	io.WriteString(os.Stderr, out)
	if path := os.Getenv(EnvFile); path != "" {
		// Packages' test binaries run at once: each line goes in one
		// O_APPEND write, so lines never interleave.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", EnvFile, err)
			return
		}
		defer f.Close()
		for _, l := range lines {
			f.WriteString(l + "\n")
		}
	}
}

// Lines returns the lines that Report writes, sorted by group name.
func Lines(pkg string) []string {
	mu.Lock()
	defer mu.Unlock()
	var lines []string
	for _, name := range slices.Sorted(maps.Keys(groups)) {
		g := groups[name]
		tests := slices.Compact(slices.Sorted(slices.Values(g.tests)))
		lines = append(lines, fmt.Sprintf("SKIP %s: %d %s tests (%s): %s",
			pkg, len(tests), name, abbreviate(tests, 4), g.reason))
	}
	return lines
}

// abbreviate lists the first n names and how many more there are.
func abbreviate(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:n], ", "), len(names)-n)
}
