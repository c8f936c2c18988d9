package kiwicache

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzDecode feeds the record decoder anything: it must never panic; what it
// refuses wraps ErrMalformedRecord; what it accepts is JSON with exactly the
// members data and timestamp, and survives a round trip. `make fuzz` runs it.
func FuzzDecode(f *testing.F) {
	for _, glob := range []string{"*.record", "malformed/*.record"} {
		files, _ := filepath.Glob(filepath.Join("testdata", "golden", glob))
		for _, file := range files {
			f.Add(must(os.ReadFile(file)))
		}
	}
	f.Add([]byte(`{"data": {"a": {"id": 1, "name": "x", "tags": ["t"]}}, "timestamp": 1.5}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		watchdog := time.AfterFunc(10*time.Second, func() { panic(fmt.Sprintf("decoding %q took over 10s", b)) })
		defer watchdog.Stop()
		rec, err := JSONCodec[string, any]{}.Decode(b)
		JSONCodec[string, item]{}.Decode(b) // typed: no panic either
		JSONCodec[int, Number]{}.Decode(b)
		if err != nil {
			if !isMalformed(err) {
				t.Fatalf("error %v does not wrap ErrMalformedRecord", err)
			}
			return
		}
		var top map[string]json.RawMessage
		if err := json.Unmarshal(b, &top); err != nil {
			t.Fatalf("accepted a record that encoding/json refuses (%v): %q", err, b)
		}
		if len(top) != 2 || top["data"] == nil || top["timestamp"] == nil {
			t.Fatalf("accepted members %v", top)
		}
		again, err := JSONCodec[string, any]{}.Decode(must(JSONCodec[string, any]{}.Encode(rec)))
		if err != nil || len(again.Data) != len(rec.Data) || !again.Timestamp.Equal(rec.Timestamp) {
			t.Fatalf("round trip: %d items at %v, then %d at %v, %v",
				len(rec.Data), rec.Timestamp, len(again.Data), again.Timestamp, err)
		}
	})
}
