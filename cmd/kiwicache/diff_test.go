package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiwicache/kiwicache"
)

// A record the Python library wrote and the Go library's rewrite of the same
// data are the same to diff (spacing, member order and timestamps aside);
// a change of value, of number form, or of keys is found, and the exit
// status says whether the data differ.
func TestDiff(t *testing.T) {
	for backend, newURL := range backends(t) {
		t.Run(backend, func(t *testing.T) {
			url := newURL(t)
			rdb := client(t, url)
			ctx := context.Background()
			python := must(os.ReadFile("../../testdata/golden/sql_table.record")) // written by kiwi-cache 0.4.5
			rdb.Set(ctx, "resource:KiwiAirlinesTable", python, 0)

			// The Go writer's record of the same data.
			codec := kiwicache.JSONCodec[string, map[string]any]{}
			rec := must(codec.Decode(python))
			rdb.Set(ctx, "resource:KiwiAirlinesTable:go", must(codec.Encode(kiwicache.Record[string, map[string]any]{Data: rec.Data, Timestamp: time.Now()})), 0)
			r := kiwicacheCmd(t, url, "diff", "KiwiAirlinesTable", "KiwiAirlinesTable:go")
			expect(t, r, 0, "--- resource:KiwiAirlinesTable: 5 items", "+++ resource:KiwiAirlinesTable:go: 5 items",
				"0 only in resource:KiwiAirlinesTable, 0 only in resource:KiwiAirlinesTable:go, 0 changed, 5 the same")

			// A migration that got things wrong.
			rec.Data["FR"]["fleet"] = kiwicache.Number("455.0")    // a float where Python wrote an int
			rec.Data["FR"]["course"] = kiwicache.Number("1.1")     // a Decimal of another precision
			rec.Data["FR"]["name"] = "Ryanair DAC"                 // another value
			delete(rec.Data["OK"], "note")                         // a member lost
			rec.Data["W6"]["extra"] = []any{1, "two"}              // a member added
			rec.Data["XX"] = map[string]any{"name": "Nowhere Air"} // a key added
			delete(rec.Data, "LH")                                 // a key lost
			rdb.Set(ctx, "resource:KiwiAirlinesTable:bad", must(codec.Encode(kiwicache.Record[string, map[string]any]{Data: rec.Data, Timestamp: time.Now()})), 0)
			r = kiwicacheCmd(t, url, "diff", "KiwiAirlinesTable", "KiwiAirlinesTable:bad")
			expect(t, r, 1,
				"\n- LH\n", "\n+ XX\n",
				`~ FR .fleet: 455 -> 455.0 (the same number, written differently)`,
				`~ FR .course: 1.1000 -> 1.1 (the same number, written differently)`,
				`~ FR .name: "Ryanair" -> "Ryanair DAC"`+"\n",
				`~ OK .note: "vlajkový dopravce \"ČSA\" 🛫" -> (absent)`,
				`~ W6 .extra: (absent) -> [1,"two"]`,
				"1 only in resource:KiwiAirlinesTable, 1 only in resource:KiwiAirlinesTable:bad, 3 changed, 1 the same")
			if r.stderr != "" {
				t.Errorf("a difference is no error: %s", r)
			}

			var d datasetDiff
			r = kiwicacheCmd(t, url, "--json", "diff", "KiwiAirlinesTable", "KiwiAirlinesTable:bad")
			if err := json.Unmarshal([]byte(r.stdout), &d); err != nil || r.status != 1 || !d.Differ ||
				strings.Join(d.OnlyInA, ",") != "LH" || strings.Join(d.OnlyInB, ",") != "XX" || len(d.Changed) != 3 || d.Same != 1 ||
				d.A.Timestamp == nil || d.A.Items != 5 || d.B.Items != 5 {
				t.Fatalf("diff --json: %+v, %v\n%s", d, err, r)
			}
			if fr := d.Changed[0]; fr.Key != "FR" || len(fr.Diffs) != 3 || fr.Diffs[0].Path != ".course" || !fr.Diffs[0].SameNumber ||
				string(fr.Diffs[0].A) != "1.1000" || string(fr.Diffs[0].B) != "1.1" {
				t.Errorf("diff --json of FR: %+v", fr)
			}
			if ok := d.Changed[1]; ok.Key != "OK" || ok.Diffs[0].B != nil {
				t.Errorf("a member only on one side has no value on the other: %+v", ok)
			}
		})
	}
}

// Either side may be a JSON file (@PATH, @- for stdin) holding a record, as
// GET returns it, or a dataset, as dump prints it.
func TestDiffFiles(t *testing.T) {
	url := miniRedis(t)
	fill(t, url)
	dir := t.TempDir()
	dumped := filepath.Join(dir, "dump.json")
	os.WriteFile(dumped, []byte(kiwicacheCmd(t, url, "dump", "Airlines").stdout), 0o644)
	record := filepath.Join(dir, "record.json")
	os.WriteFile(record, must(client(t, url).Get(context.Background(), "resource:Airlines").Bytes()), 0o644)

	expect(t, kiwicacheCmd(t, url, "diff", "Airlines", "@"+dumped), 0, "+++ "+dumped+": 2 items", "0 changed, 2 the same")
	expect(t, kiwicacheCmd(t, url, "diff", "@"+record, "Airlines"), 0, "--- "+record+": 2 items", ", timestamp 20")
	expect(t, kiwicacheStdin(t, url, strings.NewReader(`{"FR": {"name": "Ryanair", "fleet": 455, "price": 2.5}}`), "diff", "Airlines", "@-"),
		1, "+++ stdin: 1 items", "- OK\n", "1 only in resource:Airlines, 0 only in stdin, 0 changed, 1 the same")
	expect(t, kiwicacheCmd(t, url, "diff", "@"+dumped, "@"+record), 0)

	os.WriteFile(filepath.Join(dir, "list.json"), []byte(`[1, 2]`), 0o644)
	expectErr(t, kiwicacheCmd(t, url, "diff", "Airlines", "@"+filepath.Join(dir, "list.json")), exitMalformed, "holds neither a record")
	expectErr(t, kiwicacheCmd(t, url, "diff", "Airlines", "@"+filepath.Join(dir, "nope.json")), exitUsage, "no such file")
	expectErr(t, kiwicacheCmd(t, url, "diff", "Airlines", "Missing"), exitNoRecord, "no record resource:Missing")
	expectErr(t, kiwicacheCmd(t, url, "diff", "Broken", "Airlines"), exitMalformed, "resource:Broken is malformed")
}
