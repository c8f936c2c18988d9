package kiwistatus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kiwicache/kiwicache"
	"github.com/kiwicache/kiwicache/internal/cachetest"
	"github.com/kiwicache/kiwicache/kiwistatus"
	"github.com/redis/go-redis/v9"
)

func newCache(t *testing.T, reg *kiwicache.Registry, name string, rdb *redis.Client, load func(context.Context) (map[string]int, error), opts ...kiwicache.Option) *kiwicache.Cache[string, int] {
	return cachetest.NewCache(t, name, rdb, load, append(opts, kiwicache.WithRegistry(reg))...)
}

func items(n int) func(context.Context) (map[string]int, error) {
	return func(context.Context) (map[string]int, error) {
		data := make(map[string]int, n)
		for i := range n {
			data[fmt.Sprint("k", i)] = i
		}
		return data, nil
	}
}

func failing(msg string) func(context.Context) (map[string]int, error) {
	return func(context.Context) (map[string]int, error) { return nil, errors.New(msg) }
}

// fixture fills a registry with the states a status page must tell apart:
// Airlines serving 5 items; Rates:EUR whose source failed twice, with no
// data; Products serving 100 items after a failed refill (stale data kept);
// Markup whose source error holds HTML. It returns the Airlines record.
func fixture(t *testing.T) (*kiwicache.Registry, string) {
	mr, rdb := cachetest.NewRedis(t)
	reg := new(kiwicache.Registry)
	airlines := newCache(t, reg, "Airlines", rdb, items(5))
	rates := newCache(t, reg, "Rates", rdb, failing("rates API: 503 Service Unavailable"), kiwicache.WithSuffix("EUR"))
	productsFail := false
	products := newCache(t, reg, "Products", rdb, func(ctx context.Context) (map[string]int, error) {
		if productsFail {
			return nil, errors.New("products: connection refused")
		}
		return items(100)(ctx)
	})
	markup := newCache(t, reg, "Markup", rdb, failing(`bad row <script>document.title="pwned"</script> & <b>bold</b>`))

	if _, err := airlines.Snapshot(t.Context()); err != nil {
		t.Fatal(err)
	}
	rates.Refill(t.Context())
	rates.Refill(t.Context())
	if err := products.Refill(t.Context()); err != nil {
		t.Fatal(err)
	}
	productsFail = true
	products.Refill(t.Context())
	markup.Refill(t.Context())
	record, _ := mr.Get("resource:Airlines")
	return reg, record
}

// A machine (no Accept header, or curl's */*) gets JSON: every cache sorted
// by key, with its Health; times and ages that are unknown are left out.
func TestJSON(t *testing.T) {
	start := time.Now()
	reg, record := fixture(t)
	srv := httptest.NewServer(kiwistatus.Handler(reg))
	defer srv.Close()

	for _, accept := range []string{"", "*/*", "application/json"} {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		body, header := get(t, req)
		if ct := header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Accept %q: Content-Type %q, want JSON", accept, ct)
		}
		var page kiwistatus.Page
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatalf("Accept %q: %v in %s", accept, err, body)
		}
		var keys []string
		for _, c := range page.Caches {
			keys = append(keys, c.Key)
		}
		if got, want := strings.Join(keys, " "), "resource:Airlines resource:Markup resource:Products resource:Rates:EUR"; got != want {
			t.Fatalf("keys %q, want %q", got, want)
		}
		if page.Time.Before(start) || page.Time.After(time.Now()) {
			t.Errorf("page time %v, want the request's", page.Time)
		}
		air, markup, products, rates := page.Caches[0], page.Caches[1], page.Caches[2], page.Caches[3]
		if air.Name != "Airlines" || air.Suffix != "" || !air.HasData || air.Items != 5 || air.RecordBytes != len(record) ||
			air.ConsecutiveFailures != 0 || air.LastError != "" || !air.Healthy() {
			t.Errorf("Airlines: %+v, want 5 items from a %d-byte record, no error", air, len(record))
		}
		if air.SnapshotAgeSeconds == nil || *air.SnapshotAgeSeconds < 0 || *air.SnapshotAgeSeconds > time.Since(start).Seconds() {
			t.Errorf("Airlines snapshot age %v, want one within the test's %v", air.SnapshotAgeSeconds, time.Since(start))
		}
		if air.RecordTime.Before(start.Truncate(time.Microsecond)) || air.LoadedAt.Before(start) {
			t.Errorf("Airlines record time %v, loaded at %v: want times of this test", air.RecordTime, air.LoadedAt)
		}
		if rates.Name != "Rates" || rates.Suffix != "EUR" || rates.HasData || rates.ConsecutiveFailures != 2 ||
			!strings.Contains(rates.LastError, "503 Service Unavailable") || rates.LastErrorTime.IsZero() ||
			rates.SnapshotAgeSeconds != nil || rates.Healthy() {
			t.Errorf("Rates:EUR: %+v, want no data, 2 failures and the source's error", rates)
		}
		if !products.HasData || products.Items != 100 || products.ConsecutiveFailures != 1 ||
			!strings.Contains(products.LastError, "connection refused") || products.Healthy() {
			t.Errorf("Products: %+v, want 100 items kept after 1 failure", products)
		}
		if !strings.Contains(markup.LastError, "<script>") {
			t.Errorf("Markup: error %q, want the source's text as is", markup.LastError)
		}
		// Unknown times are left out, not written as year 1.
		var raw struct {
			Caches []map[string]any `json:"caches"`
		}
		json.Unmarshal(body, &raw)
		absent := map[int][]string{
			0: {"suffix", "last_error", "last_error_time", "last_notification"},                        // Airlines
			3: {"record_time", "loaded_at", "checked_at", "snapshot_age_seconds", "check_age_seconds"}, // Rates:EUR
		}
		for i, fields := range absent {
			for _, field := range fields {
				if v, ok := raw.Caches[i][field]; ok {
					t.Errorf("%s has %s: %v, want it left out", keys[i], field, v)
				}
			}
		}
	}
}

// Browsers get HTML, machines JSON; ?format= overrides the Accept header;
// only GET and HEAD are served.
func TestNegotiation(t *testing.T) {
	srv := httptest.NewServer(kiwistatus.Handler(new(kiwicache.Registry)))
	defer srv.Close()
	for _, tc := range []struct {
		accept, query, want string
	}{
		{"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7", "", "text/html; charset=utf-8"}, // Chromium
		{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "", "text/html; charset=utf-8"},                                                                         // Firefox
		{"application/xhtml+xml", "", "text/html; charset=utf-8"},
		{"", "", "application/json"},
		{"*/*", "", "application/json"},
		{"application/json, text/html;q=0.5", "", "application/json"},
		{"text/html;q=0", "", "application/json"},
		{"text/html;q=bogus", "", "application/json"},
		{"text/html", "format=json", "application/json"},
		{"", "format=html", "text/html; charset=utf-8"},
	} {
		req, _ := http.NewRequest("GET", srv.URL+"?"+tc.query, nil)
		req.Header.Set("Accept", tc.accept)
		body, header := get(t, req)
		if got := header.Get("Content-Type"); got != tc.want {
			t.Errorf("Accept %q ?%s: Content-Type %q, want %q", tc.accept, tc.query, got, tc.want)
		}
		if header.Get("Vary") != "Accept" {
			t.Errorf("Vary %q, want Accept: caches must keep both forms apart", header.Get("Vary"))
		}
		if strings.HasPrefix(tc.want, "text/html") && !strings.Contains(string(body), "No caches registered.") {
			t.Errorf("empty registry's page: %s", body)
		}
		if tc.want == "application/json" && !strings.Contains(string(body), `"caches": []`) {
			t.Errorf("empty registry's JSON: %s, want an empty list", body)
		}
	}
	resp, err := http.Post(srv.URL, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %s, Allow %q; want 405 and Allow: GET, HEAD", resp.Status, resp.Header.Get("Allow"))
	}

	rec := httptest.NewRecorder()
	kiwistatus.Handler(nil).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if !strings.Contains(rec.Body.String(), `"caches": []`) {
		t.Errorf("nil registry: %s, want an empty list", rec.Body)
	}
}

// A cache listening for notifications shows it, with the time of the last.
func TestHTMLPush(t *testing.T) {
	reg := new(kiwicache.Registry)
	reg.Register(cachetest.Refiller{RecordKey: "resource:Flags", State: kiwicache.Health{
		HasData: true, Items: 3, RecordSize: 120, RecordTime: time.Now().Add(-time.Minute),
		CheckedAt: time.Now(), PushConnected: true, LastNotification: time.Now().Add(-90 * time.Second),
	}})
	req := httptest.NewRequest("GET", "/?format=html", nil)
	rec := httptest.NewRecorder()
	kiwistatus.Handler(reg).ServeHTTP(rec, req)
	body := rec.Body.String()
	for _, want := range []string{"connected", "last 1m30s ago", "120 B", `data-key="resource:Flags"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, `class="bad"`) {
		t.Error("a healthy cache is marked bad")
	}
}

func get(t *testing.T, req *http.Request) ([]byte, http.Header) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %s: %s", req.Method, req.URL, resp.Status, body)
	}
	return body, resp.Header
}
