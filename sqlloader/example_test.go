package sqlloader_test

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/kiwicache/kiwicache/sqlloader"
	_ "modernc.org/sqlite"
)

func ExampleTableLoader() {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		panic(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	db.Exec(`CREATE TABLE airlines (iatacode TEXT PRIMARY KEY, name TEXT, fleet INTEGER, since DATE, note TEXT)`)
	db.Exec(`INSERT INTO airlines VALUES ('OK', 'Czech Airlines', 5, '1923-10-06', NULL), ('FR', 'Ryanair', 455, '1985-01-01', 'low cost')`)

	// Rows as the Python library caches them.
	rows, err := sqlloader.TableLoader[string, map[string]any](db, sqlloader.Table{
		Name: "airlines", Key: "iatacode", Where: "fleet > ?", Args: []any{10},
	})
	if err != nil {
		panic(err)
	}
	data, err := rows.Load(context.Background())
	fmt.Println(data, err)

	// Or into a struct, with native types.
	type airline struct {
		Name  string
		Fleet int
		Note  *string
	}
	typed, err := sqlloader.TableLoader[string, airline](db, sqlloader.Table{
		Name: "airlines", Key: "iatacode", Columns: []string{"name", "fleet", "note"},
	})
	if err != nil {
		panic(err)
	}
	airlines, err := typed.Load(context.Background())
	fmt.Println(airlines["OK"].Name, airlines["OK"].Fleet, airlines["OK"].Note, err)
	// Output:
	// map[FR:map[fleet:455 iatacode:FR name:Ryanair note:low cost since:1985-01-01]] <nil>
	// Czech Airlines 5 <nil> <nil>
}
