// Command report turns the output of `make bench` into the tables of
// BENCHMARKS.md and its plot: reloads side by side with the Python library,
// the heap of a reload, and reads against other caches. Every figure is the
// median of the runs of one benchmark in the output (make bench runs each 6
// times, interleaved).
//
//	go run ./bench/report bench.txt bench-reads.txt             # the tables
//	go run ./bench/report -svg BENCHMARKS.svg bench.txt         # and the plot
package main

import (
	"bufio"
	"cmp"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

func main() {
	svg := flag.String("svg", "", "also write the reload plot to this SVG file")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: report [-svg file] bench-output...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	results := results{}
	for _, name := range flag.Args() {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintln(os.Stderr, "report:", err)
			os.Exit(1)
		}
		results.read(f)
		f.Close()
	}
	results.print(os.Stdout)
	if *svg != "" {
		reloads := results.reloads()
		if len(reloads) == 0 {
			fmt.Fprintln(os.Stderr, "report: no BenchmarkReload results to plot")
			os.Exit(1)
		}
		if err := os.WriteFile(*svg, []byte(plot(reloads)), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "report:", err)
			os.Exit(1)
		}
	}
}

// results holds every value of every metric of every benchmark, by the
// benchmark's name without its -GOMAXPROCS suffix.
type results map[string]map[string][]float64

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(-\d+)?\s+\d+\s+(.*)$`)

func (r results) read(in io.Reader) {
	s := bufio.NewScanner(in)
	for s.Scan() {
		m := benchLine.FindStringSubmatch(s.Text())
		if m == nil {
			continue
		}
		fields := strings.Fields(m[3])
		for i := 0; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				continue
			}
			if r[m[1]] == nil {
				r[m[1]] = map[string][]float64{}
			}
			r[m[1]][fields[i+1]] = append(r[m[1]][fields[i+1]], v)
		}
	}
}

// median returns the median of a benchmark's metric, and whether there is one.
func (r results) median(bench, unit string) (float64, bool) {
	vs := slices.Clone(r[bench][unit])
	if len(vs) == 0 {
		return 0, false
	}
	slices.Sort(vs)
	if len(vs)%2 == 1 {
		return vs[len(vs)/2], true
	}
	return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2, true
}

// A reload is the figures of one record size.
type reload struct {
	items, bytes      int
	goNS, pyNS, getNS float64 // 0 when not measured
	polledNS          float64 // found changed by a periodic reload
	unchangedNS       float64
	goRuns, pyRuns    int
}

var reloadName = regexp.MustCompile(`^BenchmarkReload/n=(\d+)/([\w-]+)$`)

func (r results) reloads() []reload {
	byItems := map[int]*reload{}
	for name := range r {
		m := reloadName.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		rl := byItems[n]
		if rl == nil {
			rl = &reload{items: n}
			byItems[n] = rl
		}
		ns, _ := r.median(name, "ns/op")
		if bytes, ok := r.median(name, "record-bytes"); ok {
			rl.bytes = int(bytes)
		}
		switch m[2] {
		case "go":
			rl.goNS, rl.goRuns = ns, len(r[name]["ns/op"])
		case "python":
			rl.pyNS, rl.pyRuns = ns, len(r[name]["ns/op"])
		case "get":
			rl.getNS = ns
		case "go-polled":
			rl.polledNS = ns
		case "unchanged":
			rl.unchangedNS = ns
		}
	}
	var out []reload
	for _, rl := range byItems {
		out = append(out, *rl)
	}
	slices.SortFunc(out, func(a, b reload) int { return a.items - b.items })
	return out
}

func (r results) print(w io.Writer) {
	if reloads := r.reloads(); len(reloads) > 0 {
		fmt.Fprintln(w, "Reload of a changed record against Python kiwi-cache 0.4.5's reload_from_cache (GET,")
		fmt.Fprintln(w, "simplejson.loads, member check), medians. Go in one round trip: Cache.Reload, or a reload after a")
		fmt.Fprintln(w, "notification (records up to 1 MiB); polled: a periodic reload, the fetch script, then the record.")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| items (record bytes) | Python 0.4.5 | Go, one round trip | Go / Python speed | Go, polled | speed | bare GET | unchanged reload |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
		python := false
		for _, rl := range reloads {
			speed, polledSpeed := "—", "—"
			if rl.pyNS > 0 && rl.goNS > 0 {
				speed = fmt.Sprintf("**%.1fx**", rl.pyNS/rl.goNS)
				python = true
			}
			if rl.pyNS > 0 && rl.polledNS > 0 {
				polledSpeed = fmt.Sprintf("**%.1fx**", rl.pyNS/rl.polledNS)
			}
			fmt.Fprintf(w, "| %s (%s) | %s | %s | %s | %s | %s | %s | %s |\n", thousands(rl.items), size(rl.bytes),
				duration(rl.pyNS), duration(rl.goNS), speed, duration(rl.polledNS), polledSpeed, duration(rl.getNS), duration(rl.unchangedNS))
		}
		if !python {
			fmt.Fprintln(w)
			fmt.Fprintln(w, "No Python figures: the benchmark found no python3 with the redis and simplejson modules")
			fmt.Fprintln(w, "(Debian: python3-redis python3-simplejson; or set KIWICACHE_PYTHON). Go figures only.")
		}
		fmt.Fprintln(w)
	}
	r.printMemory(w)
	r.printReads(w)
}

var memoryName = regexp.MustCompile(`^BenchmarkReloadMemory/n=(\d+)$`)

func (r results) printMemory(w io.Writer) {
	var sizes []int
	for name := range r {
		if m := memoryName.FindStringSubmatch(name); m != nil {
			n, _ := strconv.Atoi(m[1])
			sizes = append(sizes, n)
		}
	}
	if len(sizes) == 0 {
		return
	}
	slices.Sort(sizes)
	fmt.Fprintln(w, "Heap of a Cache reloading a changed record (live: between reloads; peak: the most above")
	fmt.Fprintln(w, "that during a reload), and the Python process's peak resident memory:")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| items | live heap | live / record | peak above live | peak / record | Python peak RSS |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, n := range sizes {
		name := fmt.Sprintf("BenchmarkReloadMemory/n=%d", n)
		live, _ := r.median(name, "live-heap-MB")
		liveRatio, _ := r.median(name, "live-heap/record")
		peak, _ := r.median(name, "peak-extra-heap-MB")
		peakRatio, _ := r.median(name, "peak-extra-heap/record")
		rss := "—"
		if v, ok := r.median(fmt.Sprintf("BenchmarkReload/n=%d/python", n), "py-maxrss-MB"); ok {
			rss = fmt.Sprintf("%.0f MB", v)
		}
		fmt.Fprintf(w, "| %s | %.1f MB | %.2fx | %.1f MB | %.2fx | %s |\n", thousands(n), live, liveRatio, peak, peakRatio, rss)
	}
	fmt.Fprintln(w)
}

var readName = regexp.MustCompile(`^Benchmark(Get|GetParallel)/(.+)$`)

func (r results) printReads(w io.Writer) {
	type read struct {
		name        string
		serial, par float64
	}
	byName := map[string]*read{}
	var names []string
	for name := range r {
		m := readName.FindStringSubmatch(name)
		if m == nil || strings.Contains(m[2], "/") {
			continue
		}
		rd := byName[m[2]]
		if rd == nil {
			rd = &read{name: m[2]}
			byName[m[2]] = rd
			names = append(names, m[2])
		}
		ns, _ := r.median(name, "ns/op")
		if m[1] == "Get" {
			rd.serial = ns
		} else {
			rd.par = ns
		}
	}
	floor := byName["map"]
	if floor == nil || floor.serial == 0 {
		return
	}
	slices.SortFunc(names, func(a, b string) int {
		return cmp.Compare(byName[a].serial, byName[b].serial)
	})
	fmt.Fprintln(w, "Get of one of 1,000 items by a string key, against a plain map and other caches:")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| read | time | vs map | on all cores (RunParallel) |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, name := range names {
		rd := byName[name]
		fmt.Fprintf(w, "| %s | %.1f ns | %.1fx | %.1f ns |\n", name, rd.serial, rd.serial/floor.serial, rd.par)
	}
	fmt.Fprintln(w)
}

func duration(ns float64) string {
	switch {
	case ns == 0:
		return "—"
	case ns < 1e6:
		return fmt.Sprintf("%.0f µs", ns/1e3)
	case ns < 10e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns < 1e9:
		return fmt.Sprintf("%.1f ms", ns/1e6)
	}
	return fmt.Sprintf("%.2f s", ns/1e9)
}

func size(bytes int) string {
	switch {
	case bytes >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(bytes)/1e6)
	case bytes >= 1e3:
		return fmt.Sprintf("%.0f KB", float64(bytes)/1e3)
	}
	return fmt.Sprintf("%d B", bytes)
}

func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
