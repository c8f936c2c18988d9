// Package examples holds the tests that every example, and the README's quick
// start, is a program of its own: each directory beside this file is one
// example.
package examples

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
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
			binary := buildOutside(t, dir)
			if e.Name() == "service" {
				checkService(t, binary)
				return
			}
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			run := exec.CommandContext(ctx, binary)
			run.Dir = dir
			out, err := run.CombinedOutput()
			if err != nil {
				t.Fatalf("examples/%s, built outside the repository: %v\n%s", e.Name(), err, out)
			}
			t.Logf("examples/%s:\n%s", e.Name(), out)
		})
	}
	if found < 4 {
		t.Errorf("found %d examples, want airlines, refill, service and sqlite at least", found)
	}
}

// checkService runs the service example until it answers a request, then
// interrupts it as Ctrl-C would: it must stop cleanly.
func checkService(t *testing.T, binary string) {
	cmd := exec.Command(binary, "-addr", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(stdout)
	base := ""
	for base == "" && lines.Scan() {
		if rest, ok := strings.CutPrefix(lines.Text(), "serving on "); ok {
			base, _, _ = strings.Cut(rest, " ")
		}
	}
	go io.Copy(io.Discard, stdout)
	if base == "" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the service never said where it serves:\n%s", stderr.String())
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Get(base + "/airlines/OK")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Czech Airlines") {
		t.Errorf("GET /airlines/OK = %d %s", resp.StatusCode, body)
	}
	cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Errorf("the service, interrupted: %v\n%s", err, stderr.String())
	}
	t.Logf("examples/service on %s: GET /airlines/OK = %s", base, strings.TrimSpace(string(body)))
}

// The README's quick start is a whole program that builds as it is written,
// and a first run does not end quietly: with a Redis on localhost:6379 it
// prints the airline; without one it exits 1 with an error naming the record.
func TestREADMEQuickStart(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped with -short: builds the quick start as a module of its own")
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(readme), "\n## Quick start\n")
	_, code, ok := strings.Cut(section, "```go\n")
	code, _, ok2 := strings.Cut(code, "```\n")
	if !ok || !ok2 {
		t.Fatal("README.md's Quick start section has no ```go block")
	}
	dir := filepath.Join(t.TempDir(), "quickstart")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	binary := buildOutside(t, dir)

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	run := exec.CommandContext(ctx, binary)
	run.Stdout, run.Stderr = &stdout, &stderr
	err = run.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		if strings.TrimSpace(stdout.String()) != "Czech Airlines" {
			t.Errorf("quick start exited 0 printing %q, want Czech Airlines (stderr: %s)", stdout.String(), stderr.String())
		}
	case errors.As(err, &exit) && exit.ExitCode() == 1:
		if !strings.Contains(stderr.String(), "resource:Airlines") {
			t.Errorf("quick start without Redis exited 1 but its error names no record:\n%s", stderr.String())
		}
		t.Logf("no Redis on localhost:6379: the quick start exits 1 with\n%s", stderr.String())
	default:
		t.Errorf("quick start: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
}

// buildOutside makes dir, a copy of a program, a module of its own that
// requires this checkout of the library, builds it and returns the binary.
// Nor may the program import the repository's examples' packages, which the
// replaced module would otherwise provide.
func buildOutside(t *testing.T, dir string) string {
	t.Helper()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Base(dir)
	goMod := fmt.Sprintf("module example.com/%s\n\ngo 1.26.0\n\n"+
		"require github.com/kiwicache/kiwicache v0.0.0-00010101000000-000000000000\n\n"+
		"replace github.com/kiwicache/kiwicache => %s\n", name, root)
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
	env := append(os.Environ(), "GOWORK=off", "GOPROXY=off")
	// -mod=mod lets go add the program's direct requirements to its go.mod
	// (what "go mod tidy" does for a user), from the versions the library
	// requires; GOPROXY=off proves nothing else is needed.
	binary := filepath.Join(dir, name)
	build := exec.CommandContext(ctx, goBin, append([]string{"build", "-mod=mod", "-o", binary}, raceFlag()...)...)
	build.Dir, build.Env = dir, env
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build of %s outside the repository: %v\n%s", name, err, out)
	}
	list := exec.CommandContext(ctx, goBin, "list", "-deps", "-f", "{{.ImportPath}}", ".")
	list.Dir, list.Env = dir, env
	deps, err := list.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(deps)) {
		if strings.HasPrefix(dep, "github.com/kiwicache/kiwicache/examples") {
			t.Errorf("%s imports %s: copied out, it depends on the repository's examples", name, dep)
		}
	}
	return binary
}

// raceFlag returns -race when this test was built with it, so that the
// programs' packages come from the same build cache entries as the test's.
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
