// Package examples holds the test that every example is a program of its own:
// each directory beside this file is one example.
package examples

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// Each example, copied out of the repository with a go.mod of its own that
// points at this checkout of the library, builds and runs: a user can start a
// program from it. This fails when an example imports a package that only
// the repository has (a shared internal helper), reads a file outside its
// directory, or needs a module the library's go.sum does not list.
func TestExamplesBuildAndRunOutsideTheRepository(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped with -short: builds every example as a module of its own")
	}
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(e.Name(), "main.go")); err != nil {
			continue
		}
		found++
		t.Run(e.Name(), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), e.Name())
			if err := os.CopyFS(dir, os.DirFS(e.Name())); err != nil {
				t.Fatal(err)
			}
			goMod := fmt.Sprintf("module example.com/%s\n\ngo 1.26.0\n\n"+
				"require github.com/kiwicache/kiwicache v0.0.0-00010101000000-000000000000\n\n"+
				"replace github.com/kiwicache/kiwicache => %s\n", e.Name(), root)
			if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(goMod), 0o644); err != nil {
				t.Fatal(err)
			}
			sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644); err != nil {
				t.Fatal(err)
			}

			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
			defer cancel()
			// -mod=mod lets go add the example's direct requirements to its
			// go.mod (what "go mod tidy" does for a user), from the versions
			// the library requires; GOPROXY=off proves nothing else is needed.
			build := exec.CommandContext(ctx, goBin, append([]string{"build", "-mod=mod", "-o", "example"}, raceFlag()...)...)
			build.Dir = dir
			build.Env = append(os.Environ(), "GOWORK=off", "GOPROXY=off")
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("go build of a copy of examples/%s: %v\n%s", e.Name(), err, out)
			}
			// Nor may it import the repository's other examples' packages,
			// which the replaced module would otherwise provide.
			list := exec.CommandContext(ctx, goBin, "list", "-deps", "-f", "{{.ImportPath}}", ".")
			list.Dir, list.Env = dir, build.Env
			deps, err := list.Output()
			if err != nil {
				t.Fatalf("go list: %v", err)
			}
			for _, dep := range strings.Fields(string(deps)) {
				if strings.HasPrefix(dep, "github.com/kiwicache/kiwicache/examples") {
					t.Errorf("examples/%s imports %s: copied out, it depends on the repository's examples", e.Name(), dep)
				}
			}
			run := exec.CommandContext(ctx, filepath.Join(dir, "example"))
			run.Dir = dir
			out, err := run.CombinedOutput()
			if err != nil {
				t.Fatalf("examples/%s, built outside the repository: %v\n%s", e.Name(), err, out)
			}
			t.Logf("examples/%s:\n%s", e.Name(), out)
		})
	}
	if found < 3 {
		t.Errorf("found %d examples, want airlines, refill and sqlite at least", found)
	}
}

// raceFlag returns -race when this test was built with it, so that the
// examples' packages come from the same build cache entries as the test's.
func raceFlag() []string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "-race" && s.Value == "true" {
				return []string{"-race"}
			}
		}
	}
	return nil
}
