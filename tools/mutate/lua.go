package main

// Mutants of the Lua scripts that the library sends to Redis: the scripts
// decide what is written and what is read, so their conditions are mutated
// as Go's are.

import (
	"fmt"
	"regexp"
	"strings"
)

type luaMutant struct {
	line   int // 1-based, in the script
	desc   string
	script string
}

var luaOps = []struct{ from, to string }{
	{" == ", " ~= "},
	{" ~= ", " == "},
	{" > ", " >= "},
	{" >= ", " > "},
	{" < ", " <= "},
	{" <= ", " < "},
	{" and ", " or "},
	{" or ", " and "},
	{"not ", ""},
}

// A line that is a statement of its own: a one-line if, a call, an
// assignment to a variable declared before.
var luaStatement = regexp.MustCompile(`^\s*(if .* end|redis\.call\(.*\)|[a-z_]+ = .*)\s*$`)

func luaMutants(script string) []luaMutant {
	var out []luaMutant
	lines := strings.Split(script, "\n")
	for i, line := range lines {
		for _, op := range luaOps {
			for at := 0; ; {
				j := strings.Index(line[at:], op.from)
				if j < 0 {
					break
				}
				j += at
				mutated := line[:j] + op.to + line[j+len(op.from):]
				out = append(out, luaMutant{line: i + 1,
					desc:   fmt.Sprintf("Lua line %d: %q → %q in `%s`", i+1, strings.TrimSpace(op.from), strings.TrimSpace(op.to), strings.TrimSpace(line)),
					script: strings.Join(replaceLine(lines, i, mutated), "\n")})
				at = j + len(op.from)
			}
		}
		if luaStatement.MatchString(line) && !strings.HasPrefix(strings.TrimSpace(line), "local ") {
			out = append(out, luaMutant{line: i + 1,
				desc:   fmt.Sprintf("Lua line %d: delete `%s`", i+1, strings.TrimSpace(line)),
				script: strings.Join(replaceLine(lines, i, ""), "\n")})
		}
	}
	return out
}

func replaceLine(lines []string, i int, s string) []string {
	c := append([]string(nil), lines...)
	c[i] = s
	return c
}
