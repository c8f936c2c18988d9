// Package sqlloader loads a kiwicache dataset from a database table or query
// over database/sql, as the Python library's SQLAlchemyResource does. It
// imports no driver: the program chooses one (e.g. github.com/jackc/pgx/v5/stdlib
// or modernc.org/sqlite).
//
// A row cached as map[string]any holds what Python's kiwi-cache would write
// for it: NUMERIC values as kiwicache.Number with their exact digits, timestamps
// as "2019-10-08 12:34:56" (with ".123456" and "+00:00" when present), dates
// as "1985-01-01", NULL as nil. Times with a zone (timestamptz) are written in
// UTC, "+00:00", as Python shows them from a server with TimeZone=UTC (the
// usual setting); the client's zone does not matter. For native types, use a struct V with
// time.Time fields instead: its fields are scanned by the driver.
package sqlloader

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/kiwicache/kiwicache"
)

// A Table says which rows a TableLoader caches.
type Table struct {
	Schema string // optional
	Name   string
	// Key is the column whose values are the cache's keys.
	Key string
	// Columns are the columns to cache; none (or "*") means all. The key
	// column is always read.
	Columns []string
	// Where, when set, is an SQL condition with the driver's placeholders
	// ($1 or ?), and Args its values: the only SQL a Table carries.
	Where string
	Args  []any
}

// ErrInvalidTable is returned for a Table that names no table or key, or a
// V that rows cannot be read into.
var ErrInvalidTable = errors.New("sqlloader: invalid table")

// ErrNullKey is wrapped by the error of a TableLoader's Load when a row's key
// column is NULL. A NULL has no key of its own: the Python library caches
// such a row under "null", where a real row keyed "null" would also go, and
// an earlier version of this package under "<nil>". The load fails instead,
// naming the table and the column; select the rows you mean with
// Where: `"key" IS NOT NULL`.
var ErrNullKey = errors.New("NULL key")

// query builds the SELECT. Identifiers are quoted, with any quote inside
// doubled, so that no name can be read as SQL.
func (t Table) query() (string, error) {
	if t.Name == "" || t.Key == "" {
		return "", fmt.Errorf("%w: a table name and a key column are required", ErrInvalidTable)
	}
	cols := "*"
	if len(t.Columns) > 0 && !(len(t.Columns) == 1 && t.Columns[0] == "*") {
		quoted := []string{}
		hasKey := false
		for _, c := range t.Columns {
			q, err := quoteIdent(c)
			if err != nil {
				return "", err
			}
			quoted = append(quoted, q)
			hasKey = hasKey || c == t.Key
		}
		if !hasKey {
			q, err := quoteIdent(t.Key)
			if err != nil {
				return "", err
			}
			quoted = append([]string{q}, quoted...)
		}
		cols = strings.Join(quoted, ", ")
	}
	table, err := quoteIdent(t.Name)
	if err != nil {
		return "", err
	}
	if t.Schema != "" {
		schema, err := quoteIdent(t.Schema)
		if err != nil {
			return "", err
		}
		table = schema + "." + table
	}
	q := "SELECT " + cols + " FROM " + table
	if t.Where != "" {
		q += " WHERE " + t.Where
	}
	return q, nil
}

// quoteIdent validates a table or column name and quotes it. Names hold
// letters, digits, '_', '$' and spaces only: quoting alone is not enough, as
// SQLite reads a double-quoted name that matches no column as a string.
func quoteIdent(name string) (string, error) {
	if name == "" || strings.IndexFunc(name, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' && r != '$' && r != ' '
	}) >= 0 {
		return "", fmt.Errorf("%w: identifier %q (letters, digits, '_', '$' and spaces only)", ErrInvalidTable, name)
	}
	return `"` + name + `"`, nil
}

// TableLoader returns a Loader of the rows of t, keyed by t.Key. V is
// map[string]any (each row as the Python library caches it) or a struct whose
// fields take the columns (by `db` tag, else by name, ignoring case); a column
// no field takes is an error, and so is a NULL in a field that cannot hold it
// (use a pointer or a sql.Null* type).
func TableLoader[K comparable, V any](db *sql.DB, t Table) (kiwicache.Loader[K, V], error) {
	q, err := t.query()
	if err != nil {
		return nil, err
	}
	read, err := newRowReader[K, V](t.Key)
	if err != nil {
		return nil, err
	}
	return kiwicache.LoaderFunc[K, V](func(ctx context.Context) (map[K]V, error) {
		rows, err := db.QueryContext(ctx, q, t.Args...)
		if err != nil {
			return nil, fmt.Errorf("sqlloader: %s: %w", t.source(), err)
		}
		return collect(rows, t.source(), read)
	}), nil
}

// source names the table in errors: table "schema"."name".
func (t Table) source() string {
	name := strconv.Quote(t.Name)
	if t.Schema != "" {
		name = strconv.Quote(t.Schema) + "." + name
	}
	return "table " + name
}

// QueryLoader returns a Loader that runs query with args and makes each row
// an item with scan, for what a Table cannot express (joins, expressions).
func QueryLoader[K comparable, V any](db *sql.DB, query string, args []any, scan func(*sql.Rows) (K, V, error)) kiwicache.Loader[K, V] {
	return kiwicache.LoaderFunc[K, V](func(ctx context.Context) (map[K]V, error) {
		rows, err := db.QueryContext(ctx, query, args...)
		if err != nil {
			return nil, fmt.Errorf("sqlloader: query: %w", err)
		}
		return collect(rows, "query", func(rows *sql.Rows, _ []*sql.ColumnType) (K, V, error) { return scan(rows) })
	})
}

type rowReader[K comparable, V any] func(rows *sql.Rows, cols []*sql.ColumnType) (K, V, error)

// collect reads every row; errors name the source (a table, or "query") and
// the row.
func collect[K comparable, V any](rows *sql.Rows, source string, read rowReader[K, V]) (map[K]V, error) {
	defer rows.Close()
	cols, err := rows.ColumnTypes()
	if err != nil {
		return nil, fmt.Errorf("sqlloader: %s: %w", source, err)
	}
	data := map[K]V{}
	for n := 1; rows.Next(); n++ {
		k, v, err := read(rows, cols)
		if err != nil {
			return nil, fmt.Errorf("sqlloader: %s: row %d: %w", source, n, err)
		}
		data[k] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlloader: %s: %w", source, err)
	}
	return data, nil
}

// nullKey is the error of a row whose key column is NULL.
func nullKey(column string) error { return fmt.Errorf("%w in column %q", ErrNullKey, column) }

func newRowReader[K comparable, V any](key string) (rowReader[K, V], error) {
	vt := reflect.TypeFor[V]()
	switch {
	case vt == reflect.TypeFor[map[string]any]():
		return func(rows *sql.Rows, cols []*sql.ColumnType) (k K, v V, err error) {
			values := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range values {
				ptrs[i] = &values[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				return k, v, err
			}
			row := make(map[string]any, len(cols))
			keyAt := -1
			for i, c := range cols {
				row[c.Name()] = PythonValue(values[i], c.DatabaseTypeName())
				if c.Name() == key {
					keyAt = i
				}
			}
			if keyAt < 0 {
				return k, v, fmt.Errorf("no key column %q in the result", key)
			}
			k, err = convertKey[K](values[keyAt], key)
			return k, any(row).(V), err
		}, nil
	case vt.Kind() == reflect.Struct:
		return structReader[K, V](key, vt), nil
	}
	return nil, fmt.Errorf("%w: V is %v, want map[string]any or a struct", ErrInvalidTable, vt)
}

// structReader scans each column into the field that takes it.
func structReader[K comparable, V any](key string, vt reflect.Type) rowReader[K, V] {
	return func(rows *sql.Rows, cols []*sql.ColumnType) (k K, v V, err error) {
		rv := reflect.ValueOf(&v).Elem()
		dest := make([]any, len(cols))
		var keyValue any
		keyField := -1
		for i, c := range cols {
			f, ok := fieldFor(vt, c.Name())
			switch {
			case ok:
				dest[i] = rv.FieldByIndex(f.Index).Addr().Interface()
				if c.Name() == key {
					keyField = i
				}
			case c.Name() == key:
				dest[i] = &keyValue
			default:
				return k, v, fmt.Errorf("column %q has no field in %v (add one, or a `db:\"%s\"` tag)", c.Name(), vt, c.Name())
			}
		}
		if err := rows.Scan(dest...); err != nil {
			if keyIsNull(rows, cols, key) {
				return k, v, nullKey(key)
			}
			if strings.Contains(err.Error(), "NULL") {
				err = fmt.Errorf("%w (a column that can be NULL needs a pointer or sql.Null* field)", err)
			}
			return k, v, err
		}
		if keyField >= 0 {
			keyValue = reflect.ValueOf(dest[keyField]).Elem().Interface()
		}
		k, err = convertKey[K](keyValue, key)
		return k, v, err
	}
}

// fieldFor finds the exported field of t that takes column: its `db` tag,
// else its name, ignoring case.
func fieldFor(t reflect.Type, column string) (reflect.StructField, bool) {
	var byName reflect.StructField
	found := false
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || f.Anonymous {
			continue
		}
		if tag, _, _ := strings.Cut(f.Tag.Get("db"), ","); tag != "" {
			if tag == column {
				return f, true
			}
			continue
		}
		if !found && strings.EqualFold(f.Name, column) {
			byName, found = f, true
		}
	}
	return byName, found
}

// keyIsNull reports whether the key column of the current row is NULL,
// scanning the row again: a failed Scan does not say which column failed
// but in its text.
func keyIsNull(rows *sql.Rows, cols []*sql.ColumnType, key string) bool {
	values := make([]any, len(cols))
	for i := range values {
		values[i] = new(any)
	}
	if rows.Scan(values...) != nil {
		return false
	}
	for i, c := range cols {
		if c.Name() == key {
			return *values[i].(*any) == nil
		}
	}
	return false
}

// convertKey makes a key of type K from the value of the key column, a NULL
// (nil, a nil pointer, an invalid sql.Null*) being an error.
func convertKey[K comparable](v any, column string) (k K, err error) {
	if b, ok := v.([]byte); ok {
		v = string(b)
	}
	if kv, ok := v.(K); ok {
		return kv, nil
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer { // a nullable field
		if rv.IsNil() {
			return k, nullKey(column)
		}
		return convertKey[K](rv.Elem().Interface(), column)
	}
	if valuer, ok := v.(driver.Valuer); ok { // sql.NullString and the like
		dv, err := valuer.Value()
		switch {
		case err != nil:
			return k, err
		case dv != nil:
			return convertKey[K](dv, column)
		}
		v = nil
	}
	if v == nil {
		return k, nullKey(column)
	}
	if u, ok := any(&k).(encoding.TextUnmarshaler); ok {
		return k, u.UnmarshalText(fmt.Append(nil, v))
	}
	rk := reflect.ValueOf(&k).Elem()
	s := fmt.Sprint(v)
	switch rk.Kind() {
	case reflect.String:
		rk.SetString(s)
		return k, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, rk.Type().Bits())
		rk.SetInt(n)
		return k, err
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, rk.Type().Bits())
		rk.SetUint(n)
		return k, err
	}
	return k, fmt.Errorf("key %v (%T) does not convert to %T", v, v, k)
}

// PythonValue turns a driver's value of a column of type dbType (as
// sql.ColumnType.DatabaseTypeName reports it) into the value the Python
// library would cache: NUMERIC as a Number with its digits, dates and
// timestamps as the strings Python's str() makes, []byte as a string.
func PythonValue(v any, dbType string) any {
	dbType = strings.ToUpper(dbType)
	switch v := v.(type) {
	case time.Time:
		switch {
		case dbType == "DATE":
			return v.Format(time.DateOnly)
		case strings.Contains(dbType, "TZ") || strings.Contains(dbType, "WITH TIME ZONE"):
			// In UTC, whatever zone the driver chose (pgx: the client's
			// local one): what Python shows with PostgreSQL's TimeZone=UTC.
			return pythonDateTime(v.UTC(), true)
		default:
			return pythonDateTime(v, false)
		}
	case []byte:
		if isNumeric(dbType) {
			return kiwicache.Number(v)
		}
		return string(v)
	case string:
		if isNumeric(dbType) {
			return kiwicache.Number(v)
		}
	case int64:
		if dbType == "BOOLEAN" || dbType == "BOOL" { // SQLite stores booleans as 0 and 1
			return v != 0
		}
	case float64:
		if isNumeric(dbType) {
			return kiwicache.Number(strconv.FormatFloat(v, 'f', -1, 64))
		}
	}
	return v
}

func isNumeric(dbType string) bool { return dbType == "NUMERIC" || dbType == "DECIMAL" }

// pythonDateTime is Python's str(datetime): a space, microseconds only when
// there are any, the offset as +HH:MM for an aware time.
func pythonDateTime(t time.Time, aware bool) string {
	s := t.Format(time.DateTime)
	if us := t.Nanosecond() / 1e3; us != 0 {
		s += fmt.Sprintf(".%06d", us)
	}
	if aware {
		s += t.Format("-07:00")
	}
	return s
}
