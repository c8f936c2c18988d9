package sqlloader

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kiwicache/kiwicache"
	"github.com/kiwicache/kiwicache/internal/jsonexact"
)

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// The golden table, loaded into PostgreSQL and cached as the Python library
// cached it: the record Go writes reads back (in Python's terms: the same
// numbers, strings, nulls) as sql_table.expected.json.
func TestPostgresGoldenTable(t *testing.T) {
	db := openPostgres(t)
	// The client's zone must not show in the record (pgx decodes timestamptz
	// into time.Local).
	local := time.Local
	time.Local = time.FixedZone("IST", 5*3600+1800)
	defer func() { time.Local = local }()
	exec1(t, db, string(must(os.ReadFile("../testdata/golden/sql_table.sql"))))
	l := must(TableLoader[string, map[string]any](db, Table{Name: "kiwi_airlines", Key: "iatacode", Columns: []string{"*"}}))
	data := must(l.Load(t.Context()))

	rec := must(kiwicache.JSONCodec[string, map[string]any]{}.Encode(kiwicache.Record[string, map[string]any]{Data: data, Timestamp: time.Now()}))
	back := must(kiwicache.JSONCodec[string, any]{}.Decode(rec))
	dec := json.NewDecoder(bytes.NewReader(must(os.ReadFile("../testdata/golden/sql_table.expected.json"))))
	dec.UseNumber()
	var want map[string]any
	if err := dec.Decode(&want); err != nil {
		t.Fatal(err)
	}
	if diff := jsonexact.Diff(map[string]any(back.Data), want); diff != "" {
		t.Errorf("record differs from what Python wrote: %s\nrecord: %s", diff, rec)
	}
	if !bytes.Contains(rec, []byte(`"course":1.1000`)) {
		t.Errorf("NUMERIC lost its digits: %s", rec)
	}
}

type airline struct {
	Code      string          `db:"iatacode"`
	Name      string          // by name
	Fleet     int             // by name
	Revenue   int64           // by name
	Course    string          // NUMERIC as its text
	Active    bool            // by name
	Updated   time.Time       // native types
	UpdatedTZ time.Time       `db:"updated_tz"`
	Since     time.Time       // DATE
	Note      *string         // NULL -> nil
	Extra     sql.NullFloat64 `db:"-"`
}

// A struct V gets native types; the key column comes from a tagged field.
func TestPostgresStruct(t *testing.T) {
	db := openPostgres(t)
	exec1(t, db, string(must(os.ReadFile("../testdata/golden/sql_table.sql"))))
	l := must(TableLoader[string, airline](db, Table{Name: "kiwi_airlines", Key: "iatacode"}))
	data := must(l.Load(t.Context()))
	fr := data["FR"]
	if fr.Code != "FR" || fr.Revenue != 9007199254740993 || fr.Course != "1.1000" || fr.Note != nil ||
		!fr.UpdatedTZ.Equal(time.Date(2019, 10, 8, 10, 34, 56, 123456000, time.UTC)) || fr.Since.Year() != 1985 {
		t.Errorf("FR = %+v", fr)
	}
	if ok := data["OK"]; ok.Note == nil || !strings.Contains(*ok.Note, "ČSA") {
		t.Errorf("OK = %+v", ok)
	}

	// Integer keys, a column subset (the key is added), a WHERE with a bind argument.
	type fleet struct{ Fleet int }
	byFleet := must(TableLoader[int, fleet](db, Table{Name: "kiwi_airlines", Key: "fleet", Columns: []string{"fleet"},
		Where: "active = $1", Args: []any{true}}))
	if got := must(byFleet.Load(t.Context())); len(got) != 3 || got[455].Fleet != 455 {
		t.Errorf("active fleets = %v", got)
	}
}

// Struct errors are clear: a column no field takes, a NULL a field cannot hold.
func TestStructErrors(t *testing.T) {
	db := openSQLite(t)
	exec1(t, db, `CREATE TABLE t (code TEXT PRIMARY KEY, name TEXT, extra TEXT)`)
	exec1(t, db, `INSERT INTO t VALUES ('a', 'A', NULL)`)
	type noExtra struct {
		Code string
		Name string
	}
	l := must(TableLoader[string, noExtra](db, Table{Name: "t", Key: "code"}))
	if _, err := l.Load(t.Context()); err == nil || !strings.Contains(err.Error(), `column "extra" has no field`) {
		t.Errorf("unknown column: %v", err)
	}
	type nullString struct {
		Code  string
		Name  string
		Extra string
	}
	l2 := must(TableLoader[string, nullString](db, Table{Name: "t", Key: "code"}))
	if _, err := l2.Load(t.Context()); err == nil || !strings.Contains(err.Error(), "pointer or sql.Null") {
		t.Errorf("NULL into a string: %v", err)
	}
	if _, err := TableLoader[string, int](db, Table{Name: "t", Key: "code"}); !errors.Is(err, ErrInvalidTable) {
		t.Errorf("V int: %v", err)
	}
	if _, err := TableLoader[string, map[string]any](db, Table{Name: "t"}); !errors.Is(err, ErrInvalidTable) {
		t.Errorf("no key: %v", err)
	}
}

// No table or column name can inject SQL: names are validated, then quoted.
func TestHostileNames(t *testing.T) {
	for name, db := range map[string]func(*testing.T) *sql.DB{"sqlite": openSQLite, "postgres": openPostgres} {
		t.Run(name, func(t *testing.T) {
			db := db(t)
			exec1(t, db, `CREATE TABLE victim (code TEXT PRIMARY KEY, name TEXT)`)
			exec1(t, db, `INSERT INTO victim VALUES ('a', 'A')`)
			for _, tb := range []Table{
				{Name: `victim"; DROP TABLE victim; --`, Key: "code"},
				{Name: "victim", Key: `code" FROM victim; DROP TABLE victim; --`},
				{Name: "victim", Key: "code", Columns: []string{`name"), (SELECT 1); DROP TABLE victim; --`}},
				{Name: "victim", Key: "code", Schema: `x"; DROP TABLE victim; --`},
			} {
				l, err := TableLoader[string, map[string]any](db, tb)
				if err == nil {
					_, err = l.Load(t.Context())
				}
				if err == nil {
					t.Errorf("%+v: loaded", tb)
				}
			}
			var n int
			if err := db.QueryRow(`SELECT count(*) FROM victim`).Scan(&n); err != nil || n != 1 {
				t.Errorf("victim table after hostile names: %d rows, %v", n, err)
			}
			for _, bad := range []string{"", "*", "a\x00b", `a"b`, "a;b", "a--b"} {
				if _, err := TableLoader[string, map[string]any](db, Table{Name: bad, Key: "code"}); !errors.Is(err, ErrInvalidTable) {
					t.Errorf("table name %q: %v", bad, err)
				}
			}
		})
	}
}

// Embedded SQLite: rows as the Python library would cache them, and a query
// loader.
func TestSQLite(t *testing.T) {
	db := openSQLite(t)
	exec1(t, db, `CREATE TABLE airlines (iatacode TEXT PRIMARY KEY, name TEXT, fleet INTEGER, course NUMERIC,
		rate REAL, active BOOLEAN, updated TIMESTAMP, since DATE, note TEXT)`)
	exec1(t, db, `INSERT INTO airlines VALUES ('FR', 'Ryanair', 455, 1.1765, 2.0, 1, '2019-10-08 12:34:56', '1985-01-01', NULL)`)
	l := must(TableLoader[string, map[string]any](db, Table{Name: "airlines", Key: "iatacode"}))
	fr := must(l.Load(t.Context()))["FR"]
	want := map[string]any{"iatacode": "FR", "name": "Ryanair", "fleet": int64(455), "course": kiwicache.Number("1.1765"),
		"rate": 2.0, "active": true, "updated": "2019-10-08 12:34:56", "since": "1985-01-01", "note": nil}
	if fmt.Sprint(fr) != fmt.Sprint(want) {
		t.Errorf("row = %v\nwant  %v", fr, want)
	}
	rec := string(must(kiwicache.JSONCodec[string, map[string]any]{}.Encode(kiwicache.Record[string, map[string]any]{Data: map[string]map[string]any{"FR": fr}, Timestamp: time.Now()})))
	for _, s := range []string{`"rate":2.0`, `"fleet":455`, `"course":1.1765`, `"active":true`, `"note":null`} {
		if !strings.Contains(rec, s) {
			t.Errorf("record %s lacks %s", rec, s)
		}
	}

	q := QueryLoader(db, `SELECT iatacode, fleet * 2 FROM airlines WHERE fleet > ?`, []any{100},
		func(rows *sql.Rows) (code string, double int, err error) { err = rows.Scan(&code, &double); return })
	if got := must(q.Load(t.Context())); got["FR"] != 910 {
		t.Errorf("query loader = %v", got)
	}
}

// A row whose key column is NULL fails the load with an error that wraps
// ErrNullKey and names the table and the column, whatever V and the key's
// field type are: no row is cached under a made-up key such as "<nil>" (where
// a real row keyed "<nil>" would also go) or Python's "null".
func TestNullKey(t *testing.T) {
	for name, open := range map[string]func(*testing.T) *sql.DB{"sqlite": openSQLite, "postgres": openPostgres} {
		t.Run(name, func(t *testing.T) {
			db := open(t)
			exec1(t, db, `CREATE TABLE carriers (code TEXT, name TEXT, fleet INTEGER)`)
			exec1(t, db, `INSERT INTO carriers VALUES ('<nil>', 'Real row keyed <nil>', 1), ('null', 'Real row keyed null', 2), (NULL, 'No code', NULL)`)
			checkNull := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, ErrNullKey) || !strings.Contains(err.Error(), `table "carriers"`) ||
					!strings.Contains(err.Error(), `column "code"`) || !strings.Contains(err.Error(), "row 3") {
					t.Errorf("%s: %v", what, err)
				}
			}
			table := Table{Name: "carriers", Key: "code"}
			_, err := must(TableLoader[string, map[string]any](db, table)).Load(t.Context())
			checkNull("map[string]any", err)

			type byString struct {
				Code  string
				Name  string
				Fleet *int
			}
			_, err = must(TableLoader[string, byString](db, table)).Load(t.Context())
			checkNull("string field", err)
			type byPointer struct {
				Code  *string
				Name  string
				Fleet *int
			}
			_, err = must(TableLoader[string, byPointer](db, table)).Load(t.Context())
			checkNull("*string field", err)
			type byNullString struct {
				Code  sql.NullString
				Name  string
				Fleet sql.NullInt64
			}
			_, err = must(TableLoader[string, byNullString](db, table)).Load(t.Context())
			checkNull("sql.NullString field", err)
			type noKeyField struct {
				Name  string
				Fleet *int
			}
			_, err = must(TableLoader[string, noKeyField](db, table)).Load(t.Context())
			checkNull("no field for the key", err)

			// An integer key, NULL.
			_, err = must(TableLoader[int, map[string]any](db, Table{Name: "carriers", Key: "fleet"})).Load(t.Context())
			if !errors.Is(err, ErrNullKey) || !strings.Contains(err.Error(), `column "fleet"`) {
				t.Errorf("NULL integer key: %v", err)
			}

			// Without the NULL row, both real rows load under their own keys.
			table.Where = `"code" IS NOT NULL`
			data := must(must(TableLoader[string, map[string]any](db, table)).Load(t.Context()))
			if len(data) != 2 || data["<nil>"]["name"] != "Real row keyed <nil>" || data["null"]["name"] != "Real row keyed null" {
				t.Errorf("rows with a key: %v", data)
			}
			withPointer := must(must(TableLoader[string, byPointer](db, table)).Load(t.Context()))
			if len(withPointer) != 2 || *withPointer["null"].Code != "null" {
				t.Errorf("rows with a key, *string field: %v", withPointer)
			}
			withNull := must(must(TableLoader[string, byNullString](db, table)).Load(t.Context()))
			if len(withNull) != 2 || withNull["<nil>"].Name != "Real row keyed <nil>" {
				t.Errorf("rows with a key, sql.NullString field: %v", withNull)
			}
		})
	}
}
