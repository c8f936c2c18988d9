package main

// Which tests run which lines: each top-level test is run alone with a
// coverage profile, once per version of the package's Go files (cached), so
// that a mutant runs only the tests that reach it.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A block is a range of statements and the tests that ran it.
type block struct {
	File           string
	SL, SC, EL, EC int
	Tests          []int // indexes in coverMap.Tests
}

type testInfo struct {
	Name    string
	Seconds float64
	Passed  bool
}

type coverMap struct {
	Tests  []testInfo
	Blocks []block
}

// exclude leaves a test out of every choice of tests from now on.
func (c *coverMap) exclude(name string) {
	for i := range c.Tests {
		if c.Tests[i].Name == name {
			c.Tests[i].Passed = false
		}
	}
}

// failingTestOutput is the output of the failed test name, from its FAIL line.
func failingTestOutput(out []byte, name string) []byte {
	i := bytes.Index(out, []byte("--- FAIL: "+name+" "))
	if i < 0 {
		return out
	}
	end := bytes.Index(out[i+1:], []byte("\n--- "))
	if end < 0 {
		return out[i:]
	}
	return out[i : i+1+end]
}

// covering returns the tests that ran any of the positions, fastest first.
func (c *coverMap) covering(ps []token.Position) []testInfo {
	set := map[int]bool{}
	for _, p := range ps {
		file := baseName(p.Filename)
		found := false
		var before *block // the block that ends last before p
		for i, b := range c.Blocks {
			if b.File != file {
				continue
			}
			if within(p, b) {
				found = true
				for _, t := range b.Tests {
					set[t] = true
				}
			}
			if ends := b.EL < p.Line || b.EL == p.Line && b.EC <= p.Column; ends &&
				(before == nil || b.EL > before.EL || b.EL == before.EL && b.EC > before.EC) {
				before = &c.Blocks[i]
			}
		}
		// A position between blocks (the header of an if, a for or a switch
		// that begins a block of its own) runs with the block before it.
		if !found && before != nil {
			for _, t := range before.Tests {
				set[t] = true
			}
		}
	}
	var out []testInfo
	for i := range set {
		if c.Tests[i].Passed {
			out = append(out, c.Tests[i])
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seconds < out[j].Seconds })
	return out
}

func within(p token.Position, b block) bool {
	after := p.Line > b.SL || p.Line == b.SL && p.Column >= b.SC
	before := p.Line < b.EL || p.Line == b.EL && p.Column < b.EC
	return after && before
}

// testsRun, if not empty, chooses the tests that are measured and run (-run).
var testsRun string

// coverMapVersion changes when the cached map's meaning does.
const coverMapVersion = "2: blocks that no test ran are kept\n"

// sourceHash identifies the package's Go files (tests included) and module.
func sourceHash(dir string) (string, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return "", err
	}
	names = append(names, filepath.Join(dir, "go.mod"), filepath.Join(dir, "go.sum"))
	sort.Strings(names)
	h := sha256.New()
	h.Write([]byte(coverMapVersion))
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil && !os.IsNotExist(err) {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", filepath.Base(n), len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// loadCoverMap returns the cached map for this version of the package, or
// measures it.
func loadCoverMap(dir, cacheDir, work string) (*coverMap, error) {
	hash, err := sourceHash(dir)
	if err != nil {
		return nil, err
	}
	if testsRun != "" {
		sum := sha256.Sum256([]byte(testsRun))
		hash += "-run" + hex.EncodeToString(sum[:4])
	}
	path := filepath.Join(cacheDir, "cover-"+hash+".json")
	if b, err := os.ReadFile(path); err == nil {
		var c coverMap
		if json.Unmarshal(b, &c) == nil {
			logf("coverage per test: cached (%s)", path)
			return &c, nil
		}
	}
	bin := filepath.Join(work, "cover.test")
	logf("coverage per test: building")
	cmd := exec.Command("go", "test", "-c", "-vet=off", "-cover", "-covermode=set", "-o", bin, ".")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building the coverage binary: %v\n%s", err, out)
	}
	list, err := exec.Command(bin, "-test.list", ".*").Output()
	if err != nil {
		return nil, fmt.Errorf("listing tests: %w", stderrOf(err))
	}
	runRE, err := regexp.Compile(testsRun)
	if err != nil {
		return nil, fmt.Errorf("-run: %w", err)
	}
	var names []string
	for _, n := range strings.Fields(string(list)) {
		if (strings.HasPrefix(n, "Test") || strings.HasPrefix(n, "Example") || strings.HasPrefix(n, "Fuzz")) &&
			runRE.MatchString(n) {
			names = append(names, n)
		}
	}
	c := &coverMap{}
	index := map[string]int{} // block -> index in c.Blocks
	covDir := filepath.Join(work, "gocoverdir")
	os.MkdirAll(covDir, 0o755)
	start := time.Now()
	for i, name := range names {
		prof := filepath.Join(work, "cover.out")
		os.Remove(prof)
		res := runTests(bin, dir, []string{"-test.run", "^" + name + "$", "-test.count=1",
			"-test.coverprofile=" + prof, "-test.timeout=5m"}, []string{"GOCOVERDIR=" + covDir}, 6*time.Minute)
		ti := testInfo{Name: name, Seconds: res.seconds, Passed: res.err == nil}
		if !ti.Passed {
			logf("  %s fails without mutants; it chooses no mutant's tests:\n%s", name, tail(res.out, 20))
		}
		c.Tests = append(c.Tests, ti)
		if err := readProfile(prof, i, c, index); err != nil && ti.Passed {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		fmt.Fprintf(os.Stderr, "\r  %d/%d tests (%s)   ", i+1, len(names), time.Since(start).Round(time.Second))
	}
	fmt.Fprintln(os.Stderr)
	b, _ := json.Marshal(c)
	os.MkdirAll(cacheDir, 0o755)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return nil, err
	}
	return c, nil
}

func readProfile(path string, test int, c *coverMap, index map[string]int) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "mode:") {
			continue
		}
		// import/path/file.go:SL.SC,EL.EC NUMSTMT COUNT
		colon := strings.LastIndexByte(line, ':')
		fields := strings.Fields(line[colon+1:])
		if colon < 0 || len(fields) != 3 {
			continue
		}
		var b block
		b.File = baseName(line[:colon])
		if _, err := fmt.Sscanf(fields[0], "%d.%d,%d.%d", &b.SL, &b.SC, &b.EL, &b.EC); err != nil {
			return err
		}
		key := b.File + ":" + fields[0]
		i, ok := index[key]
		if !ok {
			i = len(c.Blocks)
			index[key] = i
			c.Blocks = append(c.Blocks, b)
		}
		if fields[2] == "0" {
			continue // known, not run by this test
		}
		if n := len(c.Blocks[i].Tests); n == 0 || c.Blocks[i].Tests[n-1] != test {
			c.Blocks[i].Tests = append(c.Blocks[i].Tests, test)
		}
	}
	return sc.Err()
}

type runResult struct {
	out     []byte
	err     error
	seconds float64
	timeout bool
}

// runTests runs a test binary in a process group of its own, and kills what
// is left of the group when it ends (the redis-server its TestMain started,
// when a test timed out and the binary panicked without stopping it).
func runTests(bin, dir string, args, env []string, limit time.Duration) runResult {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Start()
	if err == nil {
		groups.add(cmd.Process.Pid)
		err = cmd.Wait()
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // leftovers of this group only
		groups.remove(cmd.Process.Pid)
	}
	return runResult{out: out.Bytes(), err: err, seconds: time.Since(start).Seconds(),
		timeout: ctx.Err() != nil || bytes.Contains(out.Bytes(), []byte("panic: test timed out"))}
}

func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}

// groups are the process groups of the test binaries running now, so that an
// interrupted run ends them (and the redis-servers they started).
var groups = processGroups{pids: map[int]bool{}}

type processGroups struct {
	sync.Mutex
	pids map[int]bool
}

func (g *processGroups) add(pid int) {
	g.Lock()
	defer g.Unlock()
	g.pids[pid] = true
}

func (g *processGroups) remove(pid int) {
	g.Lock()
	defer g.Unlock()
	delete(g.pids, pid)
}

// kill ends every running test binary's process group.
func (g *processGroups) kill() {
	g.Lock()
	defer g.Unlock()
	for pid := range g.pids {
		syscall.Kill(-pid, syscall.SIGKILL)
	}
}
