package kiwistatus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/alicebob/miniredis/v2"
	"github.com/kiwicache/kiwicache"
	"github.com/kiwicache/kiwicache/kiwistatus"
	"github.com/redis/go-redis/v9"
)

// A service mounts the status page beside its other debug pages. A browser
// gets an HTML table; a script gets JSON.
func Example() {
	mr, _ := miniredis.Run() // an embedded Redis; a service passes its own client
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()

	airlines, err := kiwicache.New("Airlines", rdb,
		kiwicache.LoaderFunc[string, string](func(context.Context) (map[string]string, error) {
			return map[string]string{"OK": "Czech Airlines", "LH": "Lufthansa"}, nil
		}))
	if err != nil {
		panic(err)
	}
	defer airlines.Close()
	airlines.Get(context.Background(), "OK")

	mux := http.NewServeMux()
	mux.Handle("/debug/kiwicache", kiwistatus.Handler(kiwicache.DefaultRegistry()))
	server := httptest.NewServer(mux)
	defer server.Close()

	resp, err := http.Get(server.URL + "/debug/kiwicache") // as curl: Accept */*
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var page kiwistatus.Page
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		panic(err)
	}
	for _, c := range page.Caches {
		fmt.Println(c.Key, c.HasData, c.Items, c.ConsecutiveFailures)
	}
	// Output:
	// resource:Airlines true 2 0
}
