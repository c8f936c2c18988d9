// Command mutate measures how many small bugs the tests of a Go package
// catch: it plants one change at a time in the package's files (a condition
// negated, a boundary moved, && made ||, an arithmetic operator swapped, a
// statement deleted, a constant changed, an error or pointer result made
// nil, SET NX made SET, RunRO made Run, Before made After, min made max, an
// operator or line of an embedded Lua script changed), runs the tests that
// reach the change, and prints per file how many of the changes a test
// caught.
//
// Every mutant of the chosen files is compiled into one test binary (a
// mutant schema: each change behind a check of KIWICACHE_MUTANT), so the
// package is compiled once. Which tests reach which lines is measured once
// per version of the package's files (each test run alone with a coverage
// profile) and cached. A mutant then runs only the tests that reach it, the
// fast ones first, with -failfast. Mutants run one at a time unless -j says
// otherwise; nothing is written in the package's directory (the mutated
// files are an -overlay).
//
// Usage, from the module root (see the Makefile's mutate target):
//
//	go run ./tools/mutate [-dir .] [-j 1] [-match REGEXP] [-run REGEXP] [-survivors] [-sample N] [-v] [FILE.go ...]
//
// Mutants that change nothing observable are listed in
// tools/mutate/equivalent.txt, each with the reason, by the key the report
// prints (file, function and change; no line number). They are not run, and
// not counted in the score.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// dataPath are the files mutated by default: the snapshot state machine,
// refill policy, the record's Redis commands, the loader call, the guards,
// the registry, options, value-type checks and errors, then the record's
// codec and its decoder (thousands of mutants: -sample N bounds a run).
var dataPath = []string{"cache.go", "refill.go", "record.go", "loader.go", "validate.go",
	"registry.go", "options.go", "valuetype.go", "errors.go",
	"codec.go", "snapshot.go", "decode.go", "decode_any.go", "decode_data.go", "decode_number.go",
	"decode_plan.go", "decode_quoted.go", "decode_scan.go", "decode_strings.go", "decode_struct.go"}

var verbose, keep bool

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "mutate: "+format+"\n", args...)
}

func main() {
	dir := flag.String("dir", ".", "the package's directory")
	jobs := flag.Int("j", 1, "mutants run at once")
	match := flag.String("match", "", "run only the mutants whose key matches this regexp")
	survivors := flag.Bool("survivors", false, "run only the mutants that were not caught in the last run")
	sample := flag.Int("sample", 0, "run at most N mutants per file, chosen at random")
	list := flag.Bool("list", false, "list the mutants and exit")
	checkEquiv := flag.Bool("check-equivalent", false, "also run the mutants listed as equivalent (they must survive)")
	equivPath := flag.String("equivalent", "", "the list of equivalent mutants (default: equivalent.txt beside this tool)")
	flag.BoolVar(&keep, "keep", false, "keep the work directory (the generated files and test binary)")
	flag.BoolVar(&verbose, "v", false, "print every mutant as it runs, and the equivalent ones")
	flag.StringVar(&testsRun, "run", "", "measure and run only the tests whose name matches this regexp: "+
		"fast tests for files they cover; the score is then a lower bound")
	flag.Parse()
	files := flag.Args()
	if len(files) == 0 {
		files = dataPath
	}
	if err := run(*dir, files, *jobs, *match, *survivors, *sample, *list, *checkEquiv, *equivPath); err != nil {
		fmt.Fprintln(os.Stderr, "mutate:", err)
		os.Exit(2)
	}
}

func run(dir string, files []string, jobs int, match string, survivors bool, sample int, list, checkEquiv bool, equivPath string) error {
	start := time.Now()
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if equivPath == "" {
		equivPath = filepath.Join(dir, "tools", "mutate", "equivalent.txt")
	}
	cacheDir, err := os.UserCacheDir()
	if err != nil {
		cacheDir = os.TempDir()
	}
	cacheDir = filepath.Join(cacheDir, "kiwicache-mutate")
	work, err := os.MkdirTemp("", "mutate")
	if err != nil {
		return err
	}
	if keep {
		logf("keeping the work directory %s", work)
	} else {
		defer os.RemoveAll(work)
	}
	// Interrupted: end the running tests and their servers, and clean up.
	interrupt := make(chan os.Signal, 1)
	signal.Notify(interrupt, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-interrupt
		groups.kill()
		os.RemoveAll(work)
		logf("interrupted")
		os.Exit(130)
	}()

	g, err := load(dir, files)
	if err != nil {
		return err
	}
	logf("%d mutants in %s", len(g.mutants), strings.Join(files, " "))

	equivs, err := readEquivalent(equivPath)
	if err != nil {
		return err
	}
	byKey := map[string]*Mutant{}
	for _, m := range g.mutants {
		byKey[m.Key] = m
	}
	for _, e := range equivs {
		if m := byKey[e.key]; m != nil {
			e.used = true
			m.Reason = e.reason
			if !checkEquiv {
				m.Status = statusEquivalent
			}
		}
	}
	for _, e := range equivs {
		if !e.used && fileListed(e.key, files) {
			logf("equivalent.txt names no mutant (the code changed?): %s", e.key)
		}
	}
	if list {
		sortMutants(g.mutants)
		for _, m := range g.mutants {
			fmt.Printf("%s:%d [%s] %s\n", m.File, m.Line, m.Kind, m.Key)
		}
		return nil
	}

	// Choose what runs; the rest is left out of this report.
	chosen := g.mutants
	lastPath := filepath.Join(cacheDir, "last.json")
	if survivors {
		last := map[string]bool{}
		if b, err := os.ReadFile(lastPath); err == nil {
			var prev []*Mutant
			json.Unmarshal(b, &prev)
			for _, m := range prev {
				if m.Status == statusSurvived || m.Status == statusUncovered {
					last[m.Key] = true
				}
			}
		}
		chosen = filter(chosen, func(m *Mutant) bool { return last[m.Key] })
	}
	if match != "" {
		re, err := regexp.Compile(match)
		if err != nil {
			return err
		}
		chosen = filter(chosen, func(m *Mutant) bool { return re.MatchString(m.Key) })
	}
	if sample > 0 {
		perFile := map[string][]*Mutant{}
		for _, m := range chosen {
			perFile[m.File] = append(perFile[m.File], m)
		}
		chosen = nil
		for _, ms := range perFile {
			rand.Shuffle(len(ms), func(i, j int) { ms[i], ms[j] = ms[j], ms[i] })
			chosen = append(chosen, ms[:min(sample, len(ms))]...)
		}
	}

	bin := filepath.Join(work, "mutants.test")
	logf("building the mutant schema")
	if err := g.build(work, bin); err != nil {
		return err
	}
	for m := range g.dropped {
		m.Status = statusUnviable
	}
	cov, err := loadCoverMap(dir, cacheDir, work)
	if err != nil {
		return err
	}
	if err := baseline(bin, dir, chosen, cov); err != nil {
		return err
	}
	runAll(bin, dir, chosen, cov, jobs)

	if b, err := json.MarshalIndent(chosen, "", "  "); err == nil {
		os.MkdirAll(cacheDir, 0o755)
		os.WriteFile(lastPath, b, 0o644)
	}
	for _, m := range chosen {
		if checkEquiv && m.Reason != "" && m.Status != statusSurvived {
			logf("listed as equivalent but %s: %s", m.Status, m.Key)
		}
	}
	met := report(os.Stdout, chosen, files)
	fmt.Printf("%d mutants in %s (results: %s)\n", len(chosen), time.Since(start).Round(time.Second), lastPath)
	if !met {
		fmt.Println("below 90% in at least one file")
	}
	return nil
}

func fileListed(key string, files []string) bool {
	for _, f := range files {
		if strings.HasPrefix(key, f+" ") {
			return true
		}
	}
	return false
}

func filter(ms []*Mutant, keep func(*Mutant) bool) []*Mutant {
	var out []*Mutant
	for _, m := range ms {
		if keep(m) {
			out = append(out, m)
		}
	}
	return out
}

// baseline runs, with no mutant switched on, every test that a chosen mutant
// will run: the schema must pass them as the package does.
func baseline(bin, dir string, ms []*Mutant, cov *coverMap) error {
	set := map[string]testInfo{}
	for _, m := range ms {
		if m.Status != statusPending {
			continue
		}
		for _, t := range cov.covering(m.cover) {
			set[t.Name] = t
		}
	}
	if len(set) == 0 {
		return nil
	}
	var names []string
	budget := 0.0
	for n, t := range set {
		names = append(names, n)
		budget += t.Seconds
	}
	logf("baseline: %d tests with no mutant", len(names))
	limit := time.Duration(3*budget+60) * time.Second
	res := runTests(bin, dir, []string{"-test.run", "^(" + strings.Join(names, "|") + ")$", "-test.count=1",
		"-test.timeout=" + limit.String()}, []string{mutantEnv + "=0"}, limit+20*time.Second)
	if res.err == nil {
		return nil
	}
	// A test that fails with no mutant switched on would "kill" mutants it
	// did not catch: it chooses no mutant's tests in this run. (A failure
	// that is the schema's would show as a test failing every time here:
	// see the log, and run the test alone against the package to compare.)
	failed := failLines.FindAllSubmatch(res.out, -1)
	if len(failed) == 0 {
		return fmt.Errorf("the tests fail with no mutant switched on:\n%s", tail(res.out, 40))
	}
	for _, f := range failed {
		name := string(f[1])
		cov.exclude(name)
		logf("baseline: %s failed with no mutant switched on (flaky?): it chooses no mutant's tests in this run:\n%s",
			name, tail(failingTestOutput(res.out, name), 8))
	}
	return nil
}
