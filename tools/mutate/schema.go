package main

// The mutant schema: every mutant of every file compiled into one test
// binary, each behind a check of the KIWICACHE_MUTANT environment variable, so
// that the package is compiled once and each mutant costs only its tests.
// A statement site becomes
//
//	if _mutant() != 17 { STATEMENT }
//
// and an expression site of type T
//
//	func() T { switch _mutant() { case 18: return ALT18; case 19: return ALT19 }; return ORIGINAL }()
//
// so that nothing but the chosen branch is evaluated. The mutated files are
// given to the go command as an -overlay: the working tree is never written.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

const mutantEnv = "KIWICACHE_MUTANT"

type generator struct {
	dir          string // the package's directory
	fset         *token.FileSet
	files        []*srcFile // the files to mutate
	mutating     map[string]bool
	mutants      []*Mutant
	constMutants map[string]*Mutant
	needSetNX    bool
	pkgName      string
	dropped      map[*Mutant]bool // not viable
}

func (g *generator) add(m *Mutant) *Mutant {
	m.ID = len(g.mutants) + 1
	m.Status = statusPending
	g.mutants = append(g.mutants, m)
	return m
}

func (g *generator) drop(m *Mutant) { g.dropped[m] = true }

// load type-checks the package in dir, with its imports from the export data
// the go command builds, and finds the sites of the named files.
func load(dir string, names []string) (*generator, error) {
	out, err := exec.Command("go", "list", "-C", dir, "-export", "-deps", "-json=ImportPath,Export,Dir,GoFiles,Name").Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w", stderrOf(err))
	}
	exports := map[string]string{}
	var self struct {
		ImportPath, Export, Dir, Name string
		GoFiles                       []string
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p struct {
			ImportPath, Export, Dir, Name string
			GoFiles                       []string
		}
		if err := dec.Decode(&p); err != nil {
			return nil, err
		}
		exports[p.ImportPath] = p.Export
		self = p // the package itself comes last
	}
	g := &generator{dir: self.Dir, fset: token.NewFileSet(), mutating: map[string]bool{},
		constMutants: map[string]*Mutant{}, pkgName: self.Name, dropped: map[*Mutant]bool{}}
	for _, n := range names {
		if !contains(self.GoFiles, n) {
			return nil, fmt.Errorf("%s is not a file of package %s", n, self.ImportPath)
		}
		g.mutating[filepath.Join(self.Dir, n)] = true
	}
	var files []*ast.File
	byPath := map[string]*ast.File{}
	for _, n := range self.GoFiles {
		path := filepath.Join(self.Dir, n)
		f, err := parser.ParseFile(g.fset, path, nil, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
		byPath[path] = f
	}
	imp := importer.ForCompiler(g.fset, "gc", func(path string) (io.ReadCloser, error) {
		if exports[path] == "" {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(exports[path])
	})
	info := &types.Info{Types: map[ast.Expr]types.TypeAndValue{}, Defs: map[*ast.Ident]types.Object{},
		Uses: map[*ast.Ident]types.Object{}, Implicits: map[ast.Node]types.Object{}, Selections: map[*ast.SelectorExpr]*types.Selection{}}
	pkg, err := (&types.Config{Importer: imp}).Check(self.ImportPath, g.fset, files, info)
	if err != nil {
		return nil, fmt.Errorf("type-checking %s: %w", self.ImportPath, err)
	}
	// The other files of the package are rendered too, with the constants of
	// the mutated files replaced at their uses there.
	all := append([]string(nil), names...)
	for _, n := range self.GoFiles {
		if !contains(names, n) {
			all = append(all, n)
		}
	}
	for _, n := range all {
		path := filepath.Join(self.Dir, n)
		src, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		af := byPath[path]
		sf := &srcFile{name: n, path: path, src: src, ast: af, tf: g.fset.File(af.Pos()),
			imports: map[string]string{}, byRange: map[[2]int]*site{}, constOnly: !contains(names, n)}
		for _, is := range af.Imports {
			if pn := info.PkgNameOf(is); pn != nil && pn.Name() != "_" && pn.Name() != "." {
				sf.imports[pn.Imported().Path()] = pn.Name()
			}
		}
		g.files = append(g.files, sf)
	}
	for _, sf := range g.files {
		fd := &finder{g: g, f: sf, info: info, pkg: pkg, constOnly: sf.constOnly}
		fd.find()
	}
	g.assignKeys()
	return g, nil
}

// assignKeys names each mutant by file, function and description, numbered
// when the same change appears twice in a function.
func (g *generator) assignKeys() {
	seen := map[string]int{}
	for _, m := range g.mutants {
		k := m.File + " " + m.Func + ": " + m.Desc
		seen[k]++
		if n := seen[k]; n > 1 {
			k += fmt.Sprintf(" #%d", n)
		}
		m.Key = k
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// An outRange is where a site or one of its mutants was written in the
// generated file, for blaming compile errors.
type outRange struct {
	start, end int
	ids        []*Mutant
}

type renderer struct {
	f      *srcFile
	b      strings.Builder
	ranges []outRange
	live   func(*Mutant) bool
}

// render writes the file with every live mutant in it.
func (g *generator) render(f *srcFile) (string, []outRange) {
	roots := nestSites(f.sites)
	r := &renderer{f: f, live: func(m *Mutant) bool { return !g.dropped[m] }}
	r.rangeText(0, len(f.src), roots)
	return r.b.String(), r.ranges
}

func (r *renderer) rangeText(from, to int, sites []*site) {
	pos := from
	for _, s := range sites {
		if s.start < from || s.end > to {
			continue
		}
		r.b.Write(r.f.src[pos:s.start])
		r.site(s)
		pos = s.end
	}
	r.b.Write(r.f.src[pos:to])
}

func (r *renderer) site(s *site) {
	var alts []alt
	for _, a := range s.alts {
		if r.live(a.m) {
			alts = append(alts, a)
		}
	}
	if len(alts) == 0 {
		r.rangeText(s.start, s.end, s.children)
		return
	}
	start := r.b.Len()
	var ids []*Mutant
	for _, a := range alts {
		ids = append(ids, a.m)
	}
	if s.stmt {
		for i, a := range alts {
			if i > 0 {
				r.b.WriteString(" else ")
			}
			at := r.b.Len()
			fmt.Fprintf(&r.b, "if _mutant() == %d {", a.m.ID)
			r.parts(a.parts, s)
			r.b.WriteString("\n}")
			r.ranges = append(r.ranges, outRange{at, r.b.Len(), []*Mutant{a.m}})
		}
		r.b.WriteString(" else {")
		r.rangeText(s.start, s.end, s.children)
		r.b.WriteString("\n}")
	} else {
		fmt.Fprintf(&r.b, "func() %s { switch _mutant() {", s.typ)
		for _, a := range alts {
			at := r.b.Len()
			fmt.Fprintf(&r.b, " case %d: return ", a.m.ID)
			r.parts(a.parts, s)
			r.b.WriteString(";")
			r.ranges = append(r.ranges, outRange{at, r.b.Len(), []*Mutant{a.m}})
		}
		r.b.WriteString(" }; return ")
		r.rangeText(s.start, s.end, s.children)
		r.b.WriteString(" }()")
	}
	r.ranges = append(r.ranges, outRange{start, r.b.Len(), ids})
}

func (r *renderer) parts(ps []part, s *site) {
	for _, p := range ps {
		if p.ref {
			r.rangeText(p.from, p.to, s.children)
		} else {
			r.b.WriteString(p.text)
		}
	}
}

// helperFile is added to the package: the switch, and the stand-ins that
// some mutants call.
func (g *generator) helperFile() string {
	var b strings.Builder
	fmt.Fprintf(&b, "package %s\n\nimport (\n\t\"os\"\n\t\"strconv\"\n\t\"sync\"\n", g.pkgName)
	if g.needSetNX {
		b.WriteString("\t\"context\"\n\t\"time\"\n\n\t\"github.com/redis/go-redis/v9\"\n")
	}
	fmt.Fprintf(&b, ")\n\nvar _mutantID = sync.OnceValue(func() int { n, _ := strconv.Atoi(os.Getenv(%q)); return n })\n\n", mutantEnv)
	b.WriteString("func _mutant() int { return _mutantID() }\n")
	if g.needSetNX {
		b.WriteString(`
// _mutSetNX is SET where SET NX was meant: it always writes, and reports
// that it did.
func _mutSetNX(c redis.Cmdable, ctx context.Context, key string, value any, exp time.Duration) *redis.BoolCmd {
	st := c.Set(ctx, key, value, exp)
	cmd := redis.NewBoolCmd(ctx, "set", key, value)
	cmd.SetErr(st.Err())
	cmd.SetVal(st.Err() == nil)
	return cmd
}
`)
	}
	return b.String()
}

// build compiles the test binary with every viable mutant, dropping the
// mutants that do not compile until the rest does.
func (g *generator) build(work, bin string) error {
	for round := 1; ; round++ {
		overlay := map[string]string{}
		rendered := map[string]string{}
		ranges := map[string][]outRange{}
		for _, f := range g.files {
			if len(f.sites) == 0 {
				continue
			}
			text, rs := g.render(f)
			gen := filepath.Join(work, "gen_"+f.name)
			if err := os.WriteFile(gen, []byte(text), 0o644); err != nil {
				return err
			}
			overlay[f.path] = gen
			rendered[f.name], ranges[f.name] = text, rs
		}
		helper := filepath.Join(work, "zz_mutant_switch.go")
		if err := os.WriteFile(helper, []byte(g.helperFile()), 0o644); err != nil {
			return err
		}
		overlay[filepath.Join(g.dir, "zz_mutant_switch.go")] = helper
		ov, _ := json.Marshal(map[string]any{"Replace": overlay})
		ovPath := filepath.Join(work, "overlay.json")
		if err := os.WriteFile(ovPath, ov, 0o644); err != nil {
			return err
		}
		cmd := exec.Command("go", "test", "-c", "-vet=off", "-gcflags=-e", "-overlay", ovPath, "-o", bin, ".")
		cmd.Dir = g.dir
		out, err := cmd.CombinedOutput()
		if err == nil {
			return nil
		}
		blamed := g.blame(out, rendered, ranges)
		if len(blamed) == 0 || round > 10 {
			return fmt.Errorf("the mutant schema does not compile, and no mutant is to blame:\n%s", out)
		}
		for _, m := range blamed {
			g.dropped[m] = true
		}
		logf("build round %d: %d mutants do not compile, dropped", round, len(blamed))
	}
}

// The column is left out of some errors (an operation on a constant
// expression replaced by a typed one: -1<<(bits-1) where 1 became an int).
var compileError = regexp.MustCompile(`(?m)^(\S+\.go):(\d+):(?:(\d+):)? (.*)$`)

// blame finds the mutants whose code a compile error points into: the
// innermost site or alternative around it, or else every mutant of the
// function it is in.
func (g *generator) blame(out []byte, rendered map[string]string, ranges map[string][]outRange) []*Mutant {
	var blamed []*Mutant
	seen := map[*Mutant]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := compileError.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		// The compiler names the overlay's file (gen_NAME.go) for some errors.
		name := strings.TrimPrefix(baseName(m[1]), "gen_")
		text, ok := rendered[name]
		if !ok {
			continue
		}
		line, _ := strconv.Atoi(m[2])
		if m[3] == "" {
			for _, id := range innermostOnLine(text, line, ranges[name]) {
				if !seen[id] {
					seen[id] = true
					blamed = append(blamed, id)
				}
			}
			continue
		}
		col, _ := strconv.Atoi(m[3])
		off := lineOffset(text, line) + col - 1
		var best *outRange
		for i := range ranges[name] {
			r := &ranges[name][i]
			if r.start <= off && off < r.end && (best == nil || r.end-r.start < best.end-best.start) {
				best = &ranges[name][i]
			}
		}
		var ids []*Mutant
		if best != nil {
			ids = best.ids
		} else {
			ids = mutantsInFunc(text, off, ranges[name])
		}
		for _, id := range ids {
			if !seen[id] {
				seen[id] = true
				blamed = append(blamed, id)
			}
		}
	}
	return blamed
}

// innermostOnLine returns the mutants of the sites that overlap the line and
// hold no other site that does: for an error without a column, the build's
// next round blames the sites around them if these were not the cause.
func innermostOnLine(text string, line int, ranges []outRange) []*Mutant {
	start, end := lineOffset(text, line), lineOffset(text, line+1)
	var ids []*Mutant
	for i, r := range ranges {
		if r.end <= start || r.start >= end {
			continue
		}
		inner := false
		for j, o := range ranges {
			if j != i && o.start < end && o.end > start && r.start <= o.start && o.end <= r.end &&
				(o.start != r.start || o.end != r.end) {
				inner = true
				break
			}
		}
		if !inner {
			ids = append(ids, r.ids...)
		}
	}
	return ids
}

func lineOffset(text string, line int) int {
	off := 0
	for i := 1; i < line; i++ {
		j := strings.IndexByte(text[off:], '\n')
		if j < 0 {
			return len(text)
		}
		off += j + 1
	}
	return off
}

// mutantsInFunc returns the mutants written inside the function around off.
func mutantsInFunc(text string, off int, ranges []outRange) []*Mutant {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "gen.go", text, parser.SkipObjectResolution)
	if err != nil {
		return nil
	}
	for _, d := range f.Decls {
		start, end := fset.Position(d.Pos()).Offset, fset.Position(d.End()).Offset
		if off < start || off > end {
			continue
		}
		var ids []*Mutant
		for _, r := range ranges {
			if r.start >= start && r.end <= end {
				ids = append(ids, r.ids...)
			}
		}
		return ids
	}
	return nil
}

func stderrOf(err error) error {
	if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, bytes.TrimSpace(ee.Stderr))
	}
	return err
}

// sortMutants orders mutants by file, then line.
func sortMutants(ms []*Mutant) {
	sort.SliceStable(ms, func(i, j int) bool {
		if ms[i].File != ms[j].File {
			return ms[i].File < ms[j].File
		}
		return ms[i].Line < ms[j].Line
	})
}
