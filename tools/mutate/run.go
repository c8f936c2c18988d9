package main

// Running each mutant's tests, and the report.

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// slowTest: tests slower than this run in a second batch, after the fast
// ones failed to kill the mutant.
const slowTest = 1.0 // seconds

// killers counts, per function, the tests that killed its mutants so far: a
// test that caught one bug in a function is likely to catch the next, so it
// runs first, in a batch of its own.
var killers = struct {
	sync.Mutex
	byFunc map[string]map[string]int
}{byFunc: map[string]map[string]int{}}

func noteKiller(m *Mutant) {
	killers.Lock()
	defer killers.Unlock()
	k := m.File + " " + m.Func
	if killers.byFunc[k] == nil {
		killers.byFunc[k] = map[string]int{}
	}
	killers.byFunc[k][m.KilledBy]++
}

// likelyKillers returns up to n of tests, those that killed the most mutants
// of m's function so far.
func likelyKillers(m *Mutant, tests []testInfo, n int) (first, rest []testInfo) {
	killers.Lock()
	counts := killers.byFunc[m.File+" "+m.Func]
	killers.Unlock()
	ranked := append([]testInfo(nil), tests...)
	sort.SliceStable(ranked, func(i, j int) bool { return counts[ranked[i].Name] > counts[ranked[j].Name] })
	for _, t := range ranked {
		if len(first) < n && counts[t.Name] > 0 {
			first = append(first, t)
		} else {
			rest = append(rest, t)
		}
	}
	return first, rest
}

// runMutant runs the tests that reach m: those that caught other mutants of
// its function first, then the fast ones, then the slow ones, and stops at
// the first failure.
func runMutant(bin, dir string, m *Mutant, tests []testInfo) {
	first, others := likelyKillers(m, tests, 5)
	var fast, slow []testInfo
	for _, t := range others {
		if t.Seconds < slowTest {
			fast = append(fast, t)
		} else {
			slow = append(slow, t)
		}
	}
	start := time.Now()
	defer func() { m.Seconds = time.Since(start).Seconds() }()
	if runMutantOnce(bin, dir, m, [][]testInfo{first, fast, slow}, 0) {
		if !strings.HasPrefix(m.KilledBy, "panic") && m.KilledBy != "exit status" {
			noteKiller(m)
		}
	} else {
		m.Status = statusSurvived
	}
}

// runMutantOnce runs the batches and reports whether a test failed.
func runMutantOnce(bin, dir string, m *Mutant, batches [][]testInfo, attempt int) bool {
	for _, batch := range batches {
		if len(batch) == 0 {
			continue
		}
		var names []string
		budget := 0.0
		for _, t := range batch {
			names = append(names, t.Name)
			budget += t.Seconds
		}
		// Generous: the machine is shared, and a mutant may make a test wait
		// for a timeout of its own before failing.
		limit := time.Duration(3*budget+10) * time.Second
		res := runTests(bin, dir, []string{"-test.run", "^(" + strings.Join(names, "|") + ")$",
			"-test.count=1", "-test.failfast", "-test.timeout=" + limit.String()},
			[]string{fmt.Sprintf("%s=%d", mutantEnv, m.ID)}, limit+20*time.Second)
		if res.err == nil {
			continue
		}
		if !res.timeout && !confirmKill(bin, dir, m, res.out, limit) {
			if attempt < 1 {
				// The failure was not the mutant's: a timing test failed on a
				// loaded machine. Run the mutant's tests once more.
				return runMutantOnce(bin, dir, m, batches, attempt+1)
			}
		}
		m.Status = statusKilled
		if res.timeout {
			m.Status = statusTimeout
		}
		m.KilledBy = firstFailure(res.out)
		return true
	}
	return false
}

// confirmKill runs the test that failed first again, alone: a failure that
// is the mutant's repeats. It gets the batch's time limit: a mutant that
// makes the test hang when run alone is caught as well (a timeout), without
// waiting minutes for it.
func confirmKill(bin, dir string, m *Mutant, out []byte, limit time.Duration) bool {
	f := failLines.FindSubmatch(out)
	if f == nil {
		return true // a panic or a build failure, not a test's verdict
	}
	res := runTests(bin, dir, []string{"-test.run", "^" + string(f[1]) + "$", "-test.count=1", "-test.timeout=" + limit.String()},
		[]string{fmt.Sprintf("%s=%d", mutantEnv, m.ID)}, limit+20*time.Second)
	return res.err != nil
}

var (
	failLine  = regexp.MustCompile(`(?m)^\s*--- FAIL: (\S+)`)
	failLines = regexp.MustCompile(`(?m)^--- FAIL: (\S+)`) // top-level tests
)

func firstFailure(out []byte) string {
	if m := failLine.FindSubmatch(out); m != nil {
		return string(m[1])
	}
	if i := strings.Index(string(out), "panic: "); i >= 0 {
		line, _, _ := strings.Cut(string(out[i:]), "\n")
		return line
	}
	return "exit status"
}

// runAll runs the pending mutants, jobs at a time.
func runAll(bin, dir string, ms []*Mutant, cov *coverMap, jobs int) {
	var todo []*Mutant
	for _, m := range ms {
		if m.Status != statusPending {
			continue
		}
		tests := cov.covering(m.cover)
		if len(tests) == 0 {
			m.Status = statusUncovered
			continue
		}
		for _, t := range tests {
			m.Tests = append(m.Tests, t.Name)
		}
		todo = append(todo, m)
	}
	logf("running %d mutants (%d at a time)", len(todo), jobs)
	var (
		mu   sync.Mutex
		done int
		wg   sync.WaitGroup
		next = make(chan *Mutant)
	)
	start := time.Now()
	for range max(jobs, 1) {
		wg.Go(func() {
			for m := range next {
				tests := cov.covering(m.cover)
				runMutant(bin, dir, m, tests)
				mu.Lock()
				done++
				mark := "."
				if m.Status == statusSurvived {
					mark = "SURVIVED"
				}
				if verbose || m.Status == statusSurvived {
					fmt.Fprintf(os.Stderr, "\r[%d/%d %s] %s %s (%d tests, %.1fs)\n", done, len(todo),
						time.Since(start).Round(time.Second), mark, m, len(tests), m.Seconds)
				} else {
					fmt.Fprintf(os.Stderr, "\r[%d/%d %s]", done, len(todo), time.Since(start).Round(time.Second))
				}
				mu.Unlock()
			}
		})
	}
	for _, m := range todo {
		next <- m
	}
	close(next)
	wg.Wait()
	fmt.Fprintln(os.Stderr)
}

// An equivalence is a mutant that changes nothing observable, with why.
type equivalence struct {
	key, reason string
	used        bool
}

// readEquivalent reads KEY<TAB>REASON lines; # starts a comment line.
func readEquivalent(path string) ([]*equivalence, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []*equivalence
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, reason, ok := strings.Cut(line, "\t")
		if !ok || strings.TrimSpace(reason) == "" {
			return nil, fmt.Errorf("%s:%d: want KEY<TAB>REASON", path, n)
		}
		out = append(out, &equivalence{key: strings.TrimSpace(key), reason: strings.TrimSpace(reason)})
	}
	return out, sc.Err()
}

// report prints the mutants that were not caught, and the score per file.
func report(w io.Writer, ms []*Mutant, files []string) (allMet bool) {
	sortMutants(ms)
	var notCaught, equiv []*Mutant
	for _, m := range ms {
		switch m.Status {
		case statusSurvived, statusUncovered:
			notCaught = append(notCaught, m)
		case statusEquivalent:
			equiv = append(equiv, m)
		}
	}
	if len(equiv) > 0 && verbose {
		fmt.Fprintf(w, "\nEquivalent mutants (listed in equivalent.txt, not run):\n")
		for _, m := range equiv {
			fmt.Fprintf(w, "  %s:%d %s\n      %s\n", m.File, m.Line, m.Key, m.Reason)
		}
	}
	if len(notCaught) > 0 {
		fmt.Fprintf(w, "\nMutants not caught:\n")
		for _, m := range notCaught {
			fmt.Fprintf(w, "  %s:%d [%s] %s\n", m.File, m.Line, m.Status, m.Key)
		}
	}
	type row struct{ total, unviable, equivalent, killed, timeout, survived, uncovered int }
	rows := map[string]*row{}
	for _, f := range files {
		rows[f] = &row{}
	}
	for _, m := range ms {
		r := rows[m.File]
		if r == nil {
			continue
		}
		r.total++
		switch m.Status {
		case statusUnviable:
			r.unviable++
		case statusEquivalent:
			r.equivalent++
		case statusKilled:
			r.killed++
		case statusTimeout:
			r.killed++
			r.timeout++
		case statusSurvived:
			r.survived++
		case statusUncovered:
			r.uncovered++
		}
	}
	fmt.Fprintf(w, "\n%-14s %8s %10s %10s %7s %9s %8s %11s %7s\n", "file", "mutants", "not viable", "equivalent",
		"killed", "(timeout)", "survived", "not covered", "score")
	allMet = true
	var sum row
	sorted := append([]string(nil), files...)
	sort.Strings(sorted)
	for _, f := range sorted {
		r := rows[f]
		sum.total += r.total
		sum.unviable += r.unviable
		sum.equivalent += r.equivalent
		sum.killed += r.killed
		sum.timeout += r.timeout
		sum.survived += r.survived
		sum.uncovered += r.uncovered
		s := score(r.killed, r.survived+r.uncovered)
		if r.killed+r.survived+r.uncovered > 0 && 100*r.killed < 90*(r.killed+r.survived+r.uncovered) {
			allMet = false
		}
		fmt.Fprintf(w, "%-14s %8d %10d %10d %7d %9d %8d %11d %7s\n", f, r.total, r.unviable, r.equivalent,
			r.killed, r.timeout, r.survived, r.uncovered, s)
	}
	fmt.Fprintf(w, "%-14s %8d %10d %10d %7d %9d %8d %11d %7s\n", "total", sum.total, sum.unviable, sum.equivalent,
		sum.killed, sum.timeout, sum.survived, sum.uncovered, score(sum.killed, sum.survived+sum.uncovered))
	fmt.Fprintf(w, "\nscore = killed / (killed + survived + not covered); equivalent and not viable mutants are left out.\n")
	return allMet
}

func score(killed, missed int) string {
	if killed+missed == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(killed)/float64(killed+missed))
}
