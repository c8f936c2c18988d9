package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The service answers lookups and health checks over HTTP, and stops when
// its context ends.
func TestServe(t *testing.T) {
	ctx, stop := context.WithCancel(t.Context())
	r, w := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- run(ctx, w, "127.0.0.1:0"); w.Close() }()
	lines := bufio.NewScanner(r)
	base := ""
	for base == "" && lines.Scan() {
		if rest, ok := strings.CutPrefix(lines.Text(), "serving on "); ok {
			base, _, _ = strings.Cut(rest, " ")
		}
	}
	go io.Copy(io.Discard, r)
	if base == "" {
		t.Fatalf("the service never said where it serves: %v", <-done)
	}

	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(base + "/airlines/OK")
	if err != nil {
		t.Fatal(err)
	}
	var a Airline
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || resp.StatusCode != 200 || a.Name != "Czech Airlines" {
		t.Errorf("GET /airlines/OK = %d %+v, %v", resp.StatusCode, a, err)
	}
	resp.Body.Close()
	if resp, err := client.Get(base + "/airlines/XX"); err != nil {
		t.Error(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /airlines/XX = %d, want 404", resp.StatusCode)
	}
	resp, err = client.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "items=5 ") {
		t.Errorf("GET /healthz = %d %q", resp.StatusCode, body)
	}

	stop()
	if err := <-done; err != nil {
		t.Errorf("run after its context ended: %v", err)
	}
}
