package main

// Finding the places to mutate (sites) in the type-checked package, and the
// mutants of each.

import (
	"fmt"
	"go/ast"
	"go/constant"
	"go/token"
	"go/types"
	"sort"
	"strconv"
	"strings"
)

// A Mutant is one small change to one data-path file.
type Mutant struct {
	ID   int    `json:"id"`
	File string `json:"file"` // base name
	Line int    `json:"line"`
	Func string `json:"func"` // enclosing function, or "var NAME"
	Kind string `json:"kind"`
	Desc string `json:"desc"` // "before → after"
	// Key names the mutant without its line, so that it survives edits
	// elsewhere in the file: equivalent.txt lists keys.
	Key string `json:"key"`

	Status   string   `json:"status"` // see the status constants
	Tests    []string `json:"tests,omitempty"`
	KilledBy string   `json:"killed_by,omitempty"`
	Seconds  float64  `json:"seconds,omitempty"`
	Reason   string   `json:"reason,omitempty"` // why it is equivalent

	cover []token.Position // where it runs, for choosing the tests
}

// Mutant statuses.
const (
	statusKilled     = "killed"
	statusTimeout    = "killed (timeout)"
	statusSurvived   = "survived"
	statusUncovered  = "not covered"
	statusUnviable   = "not viable" // does not compile
	statusEquivalent = "equivalent"
	statusPending    = "pending"
)

// A site is a range of a file where one or more mutants apply: a statement
// (deleted, or replaced) or an expression (replaced).
type site struct {
	file       *srcFile
	start, end int // byte offsets
	stmt       bool
	typ        string // an expression site's type, as written in the file
	alts       []alt
	children   []*site
}

// An alt is one mutant of a site: the text that replaces it, built from
// literal text and parts of the original (rendered with their own mutants).
type alt struct {
	m     *Mutant
	parts []part // nil: delete the statement
}

type part struct {
	text     string
	from, to int // a range of the original when ref
	ref      bool
}

func lit(s string) part { return part{text: s} }
func ref(n ast.Node, f *srcFile) part {
	return part{ref: true, from: f.off(n.Pos()), to: f.off(n.End())}
}

type srcFile struct {
	name string // base name
	path string // absolute
	src  []byte
	ast  *ast.File
	tf   *token.File
	// imports: package path -> name in this file
	imports map[string]string
	sites   []*site
	byRange map[[2]int]*site // expression sites
	// constOnly: see finder.constOnly.
	constOnly bool
}

func (f *srcFile) off(p token.Pos) int { return f.tf.Offset(p) }

func (f *srcFile) text(n ast.Node) string { return string(f.src[f.off(n.Pos()):f.off(n.End())]) }

// finder walks one file and records its sites.
type finder struct {
	g    *generator
	f    *srcFile
	info *types.Info
	pkg  *types.Package
	fn   string // current function
	sigs []*types.Signature
	// coverAt, when valid, is where the expressions being visited run for
	// coverage: a case expression lies outside the blocks that coverage
	// profiles count, and runs when its switch does.
	coverAt token.Pos
	// constOnly: the file is not mutated, but the constants of the mutated
	// files are replaced at their uses in it.
	constOnly bool
}

func (fd *finder) newMutant(n ast.Node, kind, desc string) *Mutant {
	pos := fd.g.fset.Position(n.Pos())
	cover := pos
	if fd.coverAt.IsValid() {
		cover = fd.g.fset.Position(fd.coverAt)
	}
	return fd.g.add(&Mutant{File: fd.f.name, Line: pos.Line, Func: fd.fn, Kind: kind, Desc: desc,
		cover: []token.Position{cover}})
}

// exprSite returns the site of expression e, creating it; nil when e's type
// cannot be written in this file.
func (fd *finder) exprSite(e ast.Expr, t types.Type) *site {
	r := [2]int{fd.f.off(e.Pos()), fd.f.off(e.End())}
	if s := fd.f.byRange[r]; s != nil {
		return s
	}
	typ, ok := fd.typeString(t)
	if !ok {
		return nil
	}
	s := &site{file: fd.f, start: r[0], end: r[1], typ: typ}
	fd.f.byRange[r] = s
	fd.f.sites = append(fd.f.sites, s)
	return s
}

func (fd *finder) typeString(t types.Type) (string, bool) {
	if t == nil {
		return "", false
	}
	if b, ok := t.(*types.Basic); ok && b.Info()&types.IsUntyped != 0 {
		switch b.Kind() {
		case types.UntypedBool:
			return "bool", true
		case types.UntypedInt:
			return "int", true
		case types.UntypedFloat:
			return "float64", true
		case types.UntypedString:
			return "string", true
		case types.UntypedRune:
			return "rune", true
		}
		return "", false
	}
	ok := true
	s := types.TypeString(t, func(p *types.Package) string {
		if p == fd.pkg {
			return ""
		}
		name, in := fd.f.imports[p.Path()]
		if !in {
			ok = false
		}
		return name
	})
	return s, ok
}

func (fd *finder) addAlt(s *site, m *Mutant, parts ...part) {
	if s == nil {
		fd.g.drop(m)
		return
	}
	s.alts = append(s.alts, alt{m: m, parts: parts})
}

// find walks the file.
func (fd *finder) find() {
	for _, d := range fd.f.ast.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Body == nil {
				continue
			}
			fd.fn = funcName(d)
			fd.sigs = []*types.Signature{fd.info.Defs[d.Name].Type().(*types.Signature)}
			fd.walk(d.Body, nil)
		case *ast.GenDecl:
			if d.Tok != token.VAR {
				continue // constants are mutated at their uses
			}
			for _, spec := range d.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, v := range vs.Values {
					if i < len(vs.Names) {
						fd.fn = "var " + vs.Names[i].Name
					}
					fd.sigs = nil
					fd.walkPackageVar(v, vs)
				}
			}
		}
	}
}

func funcName(d *ast.FuncDecl) string {
	if d.Recv == nil || len(d.Recv.List) == 0 {
		return d.Name.Name
	}
	t := d.Recv.List[0].Type
	star := ""
	if s, ok := t.(*ast.StarExpr); ok {
		star, t = "*", s.X
	}
	switch x := t.(type) {
	case *ast.IndexExpr:
		t = x.X
	case *ast.IndexListExpr:
		t = x.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return "(" + star + id.Name + ")." + d.Name.Name
	}
	return d.Name.Name
}

// walkPackageVar finds the Lua scripts of package variables
// (redis.NewScript(`...`)); other package-level initializers are not mutated.
func (fd *finder) walkPackageVar(v ast.Expr, vs *ast.ValueSpec) {
	if fd.constOnly {
		return
	}
	call, ok := v.(*ast.CallExpr)
	if !ok || len(call.Args) != 1 {
		return
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != "NewScript" {
		return
	}
	litArg, ok := call.Args[0].(*ast.BasicLit)
	if !ok || litArg.Kind != token.STRING {
		return
	}
	script, err := strconv.Unquote(litArg.Value)
	if err != nil {
		return
	}
	// Where the script runs: every use of the variable.
	var obj types.Object
	for _, name := range vs.Names {
		obj = fd.info.Defs[name]
	}
	var uses []token.Position
	for id, o := range fd.info.Uses {
		if o == obj {
			uses = append(uses, fd.g.fset.Position(id.Pos()))
		}
	}
	s := fd.exprSite(litArg, types.Typ[types.String])
	for _, lm := range luaMutants(script) {
		m := fd.newMutant(litArg, "lua", lm.desc)
		m.Line += lm.line - 1
		m.cover = uses
		fd.addAlt(s, m, lit(strconv.Quote(lm.script)))
	}
}

// walk visits the statements and expressions of a function body. parent is
// the node that holds n.
func (fd *finder) walk(n ast.Node, parent ast.Node) {
	if n == nil {
		return
	}
	switch n := n.(type) {
	case *ast.BlockStmt:
		fd.stmtList(n.List)
	case *ast.CaseClause:
		fd.coverAt = parent.Pos()
		for _, e := range n.List {
			fd.expr(e, n)
		}
		fd.coverAt = token.NoPos
		fd.stmtList(n.Body)
		return
	case *ast.CommClause:
		if n.Comm != nil {
			fd.walkStmt(n.Comm)
		}
		fd.stmtList(n.Body)
		return
	}
}

func (fd *finder) stmtList(list []ast.Stmt) {
	for i, s := range list {
		last := i == len(list)-1
		if deletable(s) && !(last && terminating(s)) {
			fd.deleteSite(s)
		}
		fd.walkStmt(s)
	}
}

// deletable reports whether s can be deleted and still compile (in most
// cases: the build weeds out the rest).
func deletable(s ast.Stmt) bool {
	switch s := s.(type) {
	case *ast.ExprStmt, *ast.IncDecStmt, *ast.GoStmt, *ast.DeferStmt, *ast.SendStmt,
		*ast.IfStmt, *ast.ForStmt, *ast.RangeStmt, *ast.SwitchStmt, *ast.TypeSwitchStmt, *ast.SelectStmt:
		return true
	case *ast.AssignStmt:
		return s.Tok != token.DEFINE
	case *ast.BranchStmt:
		return (s.Tok == token.BREAK || s.Tok == token.CONTINUE) && s.Label == nil
	}
	return false
}

func (fd *finder) deleteSite(s ast.Stmt) {
	if fd.constOnly {
		return
	}
	st := &site{file: fd.f, start: fd.f.off(s.Pos()), end: fd.f.off(s.End()), stmt: true}
	fd.f.sites = append(fd.f.sites, st)
	m := fd.newMutant(s, "delete", "delete "+quoteSnippet(fd.f.text(s)))
	st.alts = append(st.alts, alt{m: m})
}

func (fd *finder) walkStmt(s ast.Stmt) {
	switch s := s.(type) {
	case *ast.ExprStmt:
		fd.expr(s.X, s)
	case *ast.AssignStmt:
		for _, e := range s.Rhs {
			fd.expr(e, s)
		}
	case *ast.IncDecStmt:
	case *ast.GoStmt:
		fd.callArgs(s.Call)
	case *ast.DeferStmt:
		fd.callArgs(s.Call)
	case *ast.SendStmt:
		fd.expr(s.Value, s)
	case *ast.ReturnStmt:
		fd.returnResults(s)
	case *ast.BlockStmt:
		fd.stmtList(s.List)
	case *ast.IfStmt:
		if s.Init != nil {
			fd.walkStmt(s.Init)
		}
		fd.condition(s.Cond)
		fd.expr(s.Cond, s)
		fd.stmtList(s.Body.List)
		if s.Else != nil {
			fd.walkStmt(s.Else)
		}
	case *ast.ForStmt:
		if s.Init != nil {
			fd.walkStmt(s.Init)
		}
		if s.Cond != nil {
			fd.expr(s.Cond, s)
		}
		if s.Post != nil {
			fd.walkStmt(s.Post)
		}
		fd.stmtList(s.Body.List)
	case *ast.RangeStmt:
		fd.expr(s.X, s)
		fd.stmtList(s.Body.List)
	case *ast.SwitchStmt:
		if s.Init != nil {
			fd.walkStmt(s.Init)
		}
		if s.Tag != nil {
			fd.expr(s.Tag, s)
		}
		for _, c := range s.Body.List {
			fd.walk(c, s)
		}
	case *ast.TypeSwitchStmt:
		if s.Init != nil {
			fd.walkStmt(s.Init)
		}
		for _, c := range s.Body.List {
			cc := c.(*ast.CaseClause)
			fd.stmtList(cc.Body)
		}
	case *ast.SelectStmt:
		for _, c := range s.Body.List {
			fd.walk(c, s)
		}
	case *ast.LabeledStmt:
		fd.walkStmt(s.Stmt)
	case *ast.DeclStmt:
		gd := s.Decl.(*ast.GenDecl)
		if gd.Tok == token.VAR {
			for _, spec := range gd.Specs {
				for _, v := range spec.(*ast.ValueSpec).Values {
					fd.expr(v, s)
				}
			}
		}
	}
}

// callArgs visits the arguments of a go or defer call, not the call itself:
// a deferred call replaced by a closure would run its choice at return.
func (fd *finder) callArgs(c *ast.CallExpr) {
	if fl, ok := c.Fun.(*ast.FuncLit); ok {
		fd.funcLit(fl)
	}
	for _, a := range c.Args {
		fd.expr(a, c)
	}
}

func (fd *finder) funcLit(fl *ast.FuncLit) {
	sig, _ := fd.info.TypeOf(fl).(*types.Signature)
	fd.sigs = append(fd.sigs, sig)
	fd.stmtList(fl.Body.List)
	fd.sigs = fd.sigs[:len(fd.sigs)-1]
}

// returnResults: an error or pointer result that is not nil is made nil (an
// error swallowed, a result lost), then the results' own mutants.
func (fd *finder) returnResults(s *ast.ReturnStmt) {
	var sig *types.Signature
	if len(fd.sigs) > 0 {
		sig = fd.sigs[len(fd.sigs)-1]
	}
	for i, e := range s.Results {
		if sig != nil && sig.Results().Len() == len(s.Results) && !isNil(e) && !fd.constOnly {
			rt := sig.Results().At(i).Type()
			_, isPtr := rt.Underlying().(*types.Pointer)
			if types.Identical(rt, errorType) || isPtr {
				if !containsRecover(e) {
					m := fd.newMutant(e, "return", "return "+quoteSnippet(fd.f.text(e))+" → return nil")
					fd.addAlt(fd.exprSite(e, rt), m, lit("nil"))
				}
			}
		}
		fd.expr(e, s)
	}
}

var errorType = types.Universe.Lookup("error").Type()

func isNil(e ast.Expr) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == "nil"
}

func containsRecover(e ast.Node) bool {
	found := false
	ast.Inspect(e, func(n ast.Node) bool {
		if c, ok := n.(*ast.CallExpr); ok {
			if id, ok := c.Fun.(*ast.Ident); ok && id.Name == "recover" {
				found = true
			}
		}
		return !found
	})
	return found
}

// condition: an if condition made of && or || is negated as a whole.
func (fd *finder) condition(cond ast.Expr) {
	if fd.constOnly {
		return
	}
	b, ok := ast.Unparen(cond).(*ast.BinaryExpr)
	if !ok || (b.Op != token.LAND && b.Op != token.LOR) || containsRecover(cond) {
		return
	}
	m := fd.newMutant(cond, "negate", quoteSnippet(fd.f.text(cond))+" → !(…)")
	fd.addAlt(fd.exprSite(cond, fd.info.TypeOf(cond)), m, lit("!("), ref(cond, fd.f), lit(")"))
}

var negated = map[token.Token]token.Token{
	token.EQL: token.NEQ, token.NEQ: token.EQL,
	token.LSS: token.GEQ, token.GEQ: token.LSS,
	token.GTR: token.LEQ, token.LEQ: token.GTR,
}

var boundary = map[token.Token]token.Token{
	token.LSS: token.LEQ, token.LEQ: token.LSS,
	token.GTR: token.GEQ, token.GEQ: token.GTR,
}

var arith = map[token.Token]token.Token{
	token.ADD: token.SUB, token.SUB: token.ADD,
	token.MUL: token.QUO, token.QUO: token.MUL,
}

// swaps are calls replaced by another of the same signature.
var swaps = map[string]string{
	"RunRO":  "Run",
	"Before": "After",
	"After":  "Before",
	"min":    "max",
	"max":    "min",
}

// expr visits an expression evaluated at run time, and its parts.
func (fd *finder) expr(e ast.Expr, parent ast.Node) {
	if e == nil || containsRecover(e) {
		// A recover() moved into a closure would no longer stop a panic.
		return
	}
	if tv, ok := fd.info.Types[e]; ok && (tv.IsType() || tv.IsBuiltin()) {
		return
	}
	switch e := e.(type) {
	case *ast.ParenExpr:
		fd.expr(e.X, e)
	case *ast.BinaryExpr:
		fd.binary(e)
		fd.expr(e.X, e)
		fd.expr(e.Y, e)
	case *ast.UnaryExpr:
		if e.Op == token.NOT && !fd.constOnly {
			m := fd.newMutant(e, "negate", quoteSnippet(fd.f.text(e))+" → "+quoteSnippet(fd.f.text(e.X)))
			fd.addAlt(fd.exprSite(e, fd.info.TypeOf(e)), m, ref(e.X, fd.f))
		}
		if e.Op == token.AND {
			if _, ok := e.X.(*ast.CompositeLit); !ok {
				return // the operand of & must stay addressable
			}
		}
		fd.expr(e.X, e)
	case *ast.Ident:
		fd.ident(e)
	case *ast.BasicLit:
		fd.basicLit(e)
	case *ast.CallExpr:
		fd.call(e)
	case *ast.SelectorExpr:
		fd.expr(e.X, e)
	case *ast.IndexExpr:
		fd.expr(e.X, e)
		fd.expr(e.Index, e)
	case *ast.SliceExpr:
		fd.expr(e.X, e)
		fd.expr(e.Low, e)
		fd.expr(e.High, e)
		fd.expr(e.Max, e)
	case *ast.StarExpr:
		fd.expr(e.X, e)
	case *ast.TypeAssertExpr:
		fd.expr(e.X, e)
	case *ast.KeyValueExpr:
		fd.expr(e.Value, e)
	case *ast.CompositeLit:
		for _, el := range e.Elts {
			if kv, ok := el.(*ast.KeyValueExpr); ok {
				fd.expr(kv.Value, kv)
			} else {
				fd.expr(el, e)
			}
		}
	case *ast.FuncLit:
		fd.funcLit(e)
	}
}

func (fd *finder) binary(e *ast.BinaryExpr) {
	if fd.constOnly {
		return
	}
	t := fd.info.TypeOf(e)
	add := func(kind string, op token.Token) {
		m := fd.newMutant(e, kind, quoteSnippet(fd.f.text(e))+" → "+op.String())
		fd.addAlt(fd.exprSite(e, t), m, lit("("), ref(e.X, fd.f), lit(") "+op.String()+" ("), ref(e.Y, fd.f), lit(")"))
	}
	if op, ok := negated[e.Op]; ok {
		add("negate", op)
	}
	if op, ok := boundary[e.Op]; ok {
		add("boundary", op)
	}
	if e.Op == token.LAND {
		add("logical", token.LOR)
	}
	if e.Op == token.LOR {
		add("logical", token.LAND)
	}
	if op, ok := arith[e.Op]; ok {
		if b, isBasic := t.Underlying().(*types.Basic); isBasic && b.Info()&types.IsNumeric != 0 {
			if tv := fd.info.Types[e]; tv.Value == nil { // a constant expression stays
				add("arithmetic", op)
			}
		}
	}
}

func (fd *finder) ident(id *ast.Ident) {
	obj := fd.info.Uses[id]
	switch o := obj.(type) {
	case *types.Const:
		if o.Pkg() == nil { // true, false
			if (o.Name() == "true" || o.Name() == "false") && !fd.constOnly {
				flip := map[string]string{"true": "false", "false": "true"}[o.Name()]
				m := fd.newMutant(id, "constant", o.Name()+" → "+flip)
				fd.addAlt(fd.exprSite(id, fd.info.TypeOf(id)), m, lit(flip))
			}
			return
		}
		if o.Pkg() != fd.pkg || o.Parent() != fd.pkg.Scope() {
			return
		}
		fd.constUse(id, o)
	}
}

// constUse: a package constant declared in a mutated file is replaced at
// every use in function bodies by one mutant per replacement.
func (fd *finder) constUse(id *ast.Ident, o *types.Const) {
	declFile := fd.g.fset.Position(o.Pos()).Filename
	if !fd.g.mutating[declFile] {
		return
	}
	for _, r := range constReplacements(o.Val()) {
		key := o.Name() + " → " + r
		m := fd.g.constMutants[key]
		if m == nil {
			pos := fd.g.fset.Position(o.Pos())
			m = fd.g.add(&Mutant{File: baseName(declFile), Line: pos.Line, Func: "const " + o.Name(), Kind: "constant",
				Desc: "every use of " + key})
			fd.g.constMutants[key] = m
		}
		m.cover = append(m.cover, fd.g.fset.Position(id.Pos()))
		typ, _ := fd.typeString(fd.info.TypeOf(id))
		fd.addAlt(fd.exprSite(id, fd.info.TypeOf(id)), m, lit(typ+"("+r+")"))
	}
}

// constReplacements are the values an integer constant is replaced with:
// n+1 and 0 for small ones (1 for 0), 2n and n/2 for large ones (durations).
func constReplacements(v constant.Value) []string {
	if v.Kind() != constant.Int {
		return nil
	}
	n, exact := constant.Int64Val(v)
	if !exact {
		return nil
	}
	switch {
	case n == 0:
		return []string{"1"}
	case n > -1000 && n < 1000:
		return []string{strconv.FormatInt(n+1, 10), "0"}
	default:
		return []string{strconv.FormatInt(2*n, 10), strconv.FormatInt(n/2, 10)}
	}
}

func (fd *finder) basicLit(l *ast.BasicLit) {
	if fd.constOnly {
		return
	}
	if l.Kind != token.INT && l.Kind != token.FLOAT {
		return
	}
	tv := fd.info.Types[l]
	rs := constReplacements(tv.Value)
	if tv.Value != nil && tv.Value.Kind() == constant.Float {
		rs = []string{"0"}
		if f, _ := constant.Float64Val(tv.Value); f == 0 {
			rs = []string{"1"}
		}
	}
	for _, r := range rs {
		m := fd.newMutant(l, "constant", l.Value+" → "+r)
		fd.addAlt(fd.exprSite(l, tv.Type), m, lit(r))
	}
}

func (fd *finder) call(c *ast.CallExpr) {
	fd.swapCall(c)
	switch fun := c.Fun.(type) {
	case *ast.SelectorExpr:
		fd.expr(fun.X, c)
	case *ast.FuncLit:
		fd.funcLit(fun)
	case *ast.Ident, *ast.IndexExpr, *ast.IndexListExpr:
	default:
		fd.expr(c.Fun, c)
	}
	for _, a := range c.Args {
		fd.expr(a, c)
	}
}

// swapCall: SetNX made a plain SET, RunRO made Run, Before made After, min
// made max.
func (fd *finder) swapCall(c *ast.CallExpr) {
	if fd.constOnly {
		return
	}
	t := fd.info.TypeOf(c)
	if _, tuple := t.(*types.Tuple); tuple || t == nil {
		return
	}
	switch fun := c.Fun.(type) {
	case *ast.SelectorExpr:
		name := fun.Sel.Name
		if _, isMethod := fd.info.Selections[fun]; !isMethod {
			return
		}
		if name == "SetNX" && len(c.Args) == 4 {
			m := fd.newMutant(c, "call", "SetNX → SET (no NX): "+quoteSnippet(fd.f.text(c)))
			fd.g.needSetNX = true
			parts := []part{lit("_mutSetNX("), ref(fun.X, fd.f)}
			for _, a := range c.Args {
				parts = append(parts, lit(", "), ref(a, fd.f))
			}
			fd.addAlt(fd.exprSite(c, t), m, append(parts, lit(")"))...)
			return
		}
		to, ok := swaps[name]
		if !ok {
			return
		}
		recv := fd.info.Selections[fun].Recv()
		alt, _, _ := types.LookupFieldOrMethod(recv, true, fd.pkg, to)
		orig := fd.info.Selections[fun].Obj()
		if alt == nil || !types.Identical(alt.Type(), orig.Type()) {
			return
		}
		m := fd.newMutant(c, "call", name+" → "+to+": "+quoteSnippet(fd.f.text(c)))
		fd.addAlt(fd.exprSite(c, t), m, swapParts(c, fun.X, "."+to, fd.f)...)
	case *ast.Ident:
		if fd.info.Uses[fun] != types.Universe.Lookup(fun.Name) {
			return
		}
		to, ok := swaps[fun.Name]
		if !ok || fun.Name != "min" && fun.Name != "max" {
			return
		}
		m := fd.newMutant(c, "call", fun.Name+" → "+to+": "+quoteSnippet(fd.f.text(c)))
		fd.addAlt(fd.exprSite(c, t), m, swapParts(c, nil, to, fd.f)...)
	}
}

func swapParts(c *ast.CallExpr, recv ast.Expr, fun string, f *srcFile) []part {
	var parts []part
	if recv != nil {
		parts = append(parts, lit("("), ref(recv, f), lit(")"))
	}
	parts = append(parts, lit(fun+"("))
	for i, a := range c.Args {
		if i > 0 {
			parts = append(parts, lit(", "))
		}
		parts = append(parts, ref(a, f))
	}
	if c.Ellipsis.IsValid() {
		parts = append(parts, lit("..."))
	}
	return append(parts, lit(")"))
}

// terminating reports whether s is a terminating statement (Go spec), so
// that deleting it as the last of its block would leave a function without
// a return.
func terminating(s ast.Stmt) bool {
	switch s := s.(type) {
	case *ast.ReturnStmt:
		return true
	case *ast.BranchStmt:
		return s.Tok == token.GOTO || s.Tok == token.FALLTHROUGH
	case *ast.ExprStmt:
		if c, ok := s.X.(*ast.CallExpr); ok {
			if id, ok := c.Fun.(*ast.Ident); ok && id.Name == "panic" {
				return true
			}
		}
	case *ast.BlockStmt:
		return len(s.List) > 0 && terminating(s.List[len(s.List)-1])
	case *ast.IfStmt:
		return s.Else != nil && terminating(s.Body) && terminating(s.Else)
	case *ast.ForStmt:
		return s.Cond == nil && !hasBreak(s.Body)
	case *ast.LabeledStmt:
		return terminating(s.Stmt)
	case *ast.SwitchStmt:
		return clausesTerminate(s.Body)
	case *ast.TypeSwitchStmt:
		return clausesTerminate(s.Body)
	case *ast.SelectStmt:
		for _, c := range s.Body.List {
			b := c.(*ast.CommClause).Body
			if len(b) == 0 || !terminating(b[len(b)-1]) || hasBreak(&ast.BlockStmt{List: b}) {
				return false
			}
		}
		return true
	}
	return false
}

func clausesTerminate(body *ast.BlockStmt) bool {
	hasDefault := false
	for _, c := range body.List {
		cc := c.(*ast.CaseClause)
		if cc.List == nil {
			hasDefault = true
		}
		if len(cc.Body) == 0 || !terminating(cc.Body[len(cc.Body)-1]) && !isFallthrough(cc.Body[len(cc.Body)-1]) ||
			hasBreak(&ast.BlockStmt{List: cc.Body}) {
			return false
		}
	}
	return hasDefault
}

func isFallthrough(s ast.Stmt) bool {
	b, ok := s.(*ast.BranchStmt)
	return ok && b.Tok == token.FALLTHROUGH
}

// hasBreak reports whether body holds a break that leaves it (conservatively:
// any break not inside a nested loop, switch or select, and any labeled one).
func hasBreak(body ast.Node) bool {
	found := false
	var visit func(n ast.Node, nested bool)
	visit = func(n ast.Node, nested bool) {
		ast.Inspect(n, func(x ast.Node) bool {
			if found || x == nil {
				return false
			}
			switch x := x.(type) {
			case *ast.FuncLit:
				return false
			case *ast.BranchStmt:
				if x.Tok == token.BREAK && (x.Label != nil || !nested) {
					found = true
				}
			case *ast.ForStmt, *ast.RangeStmt, *ast.SwitchStmt, *ast.TypeSwitchStmt, *ast.SelectStmt:
				if x != n {
					visit(x, true)
					return false
				}
			}
			return true
		})
	}
	visit(body, false)
	return found
}

// quoteSnippet is the first line of code, shortened, for descriptions.
func quoteSnippet(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 70 {
		s = s[:67] + "…"
	}
	return "`" + s + "`"
}

func baseName(path string) string { return path[strings.LastIndexByte(path, '/')+1:] }

// nestSites orders a file's sites into a tree: each site's children are the
// sites within its range (a statement before the expression of the same
// range).
func nestSites(sites []*site) []*site {
	sort.SliceStable(sites, func(i, j int) bool {
		a, b := sites[i], sites[j]
		if a.start != b.start {
			return a.start < b.start
		}
		if a.end != b.end {
			return a.end > b.end
		}
		return a.stmt && !b.stmt
	})
	for _, s := range sites {
		s.children = nil // made again in each build round
	}
	var roots, stack []*site
	for _, s := range sites {
		for len(stack) > 0 && !(s.start >= stack[len(stack)-1].start && s.end <= stack[len(stack)-1].end) {
			stack = stack[:len(stack)-1]
		}
		if len(stack) == 0 {
			roots = append(roots, s)
		} else {
			top := stack[len(stack)-1]
			top.children = append(top.children, s)
		}
		stack = append(stack, s)
	}
	return roots
}

func (m *Mutant) String() string {
	return fmt.Sprintf("%s:%d %s: %s", m.File, m.Line, m.Func, m.Desc)
}
