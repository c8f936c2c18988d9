package kiwistatus_test

import (
	"bytes"
	"context"
	"flag"
	"html"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiwicache/kiwicache/kiwistatus"
)

// To refresh the screenshot in the docs:
//
//	go test ./kiwistatus -run TestHTMLInChromium -args -screenshot=$PWD/docs/status.png
var screenshot = flag.String("screenshot", "", "write the status page's screenshot to this PNG file")

// chromium returns a headless browser from PATH, or skips the test.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if bin, err := exec.LookPath(name); err == nil {
			return bin
		}
	}
	t.Skip("no chromium in PATH (apt-get install chromium): the HTML status page is not checked in a browser")
	return ""
}

// runChromium runs a headless browser with a profile of its own on url, with
// the extra arguments, and returns its standard output.
func runChromium(t *testing.T, bin, url string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	args = append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(),
	}, append(args, url)...)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", bin, err, stderr.Bytes())
	}
	return stdout.Bytes()
}

var (
	rowRE  = regexp.MustCompile(`(?s)<tr[^>]*>(.*?)</tr>`)
	cellRE = regexp.MustCompile(`(?s)<t[dh][^>]*>(.*?)</t[dh]>`)
	tagRE  = regexp.MustCompile(`<[^>]*>`)
)

// rows returns the text of every table cell, row by row, as the browser's
// DOM holds them.
func rows(dom string) [][]string {
	var out [][]string
	for _, row := range rowRE.FindAllStringSubmatch(dom, -1) {
		var cells []string
		for _, cell := range cellRE.FindAllStringSubmatch(row[1], -1) {
			text := html.UnescapeString(tagRE.ReplaceAllString(cell[1], " "))
			cells = append(cells, strings.Join(strings.Fields(text), " "))
		}
		out = append(out, cells)
	}
	return out
}

// A real browser, asking for the page as browsers do (its own Accept
// header, no ?format), gets the HTML table: a header and one row per cache in
// key order, each with its state; a source error holding markup is shown as
// text, never run; a screenshot of the page is a real image.
func TestHTMLInChromium(t *testing.T) {
	bin := chromium(t)
	reg, _ := fixture(t)
	var mu sync.Mutex
	var accepts []string
	status := kiwistatus.Handler(reg)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/debug/kiwicache" {
			mu.Lock()
			accepts = append(accepts, r.Header.Get("Accept"))
			mu.Unlock()
		}
		status.ServeHTTP(w, r)
	}))
	defer srv.Close()
	url := srv.URL + "/debug/kiwicache"

	dom := string(runChromium(t, bin, url, "--dump-dom"))
	mu.Lock()
	t.Logf("chromium asked with Accept: %q", accepts)
	if len(accepts) == 0 || !strings.Contains(accepts[0], "text/html") {
		t.Errorf("the browser's request had Accept %q", accepts)
	}
	mu.Unlock()

	if !strings.Contains(dom, "<title>kiwicache status</title>") {
		t.Fatalf("the browser's DOM is not the status page (the script in an error ran, or JSON was served):\n%s", dom)
	}
	got := rows(dom)
	want := [][]string{
		{"Record key", "Data", "Items", "Record", "Data age", "Checked", "Failures", "Last error", "Push"},
		{"resource:Airlines", "yes", "5"},
		{"resource:Markup", "none", "0"},
		{"resource:Products", "yes", "100"},
		{"resource:Rates:EUR", "none", "0"},
	}
	if len(got) != len(want) {
		t.Fatalf("table rows: %q, want %d", got, len(want))
	}
	for i, w := range want {
		if len(got[i]) != 9 {
			t.Errorf("row %d has %d cells: %q", i, len(got[i]), got[i])
			continue
		}
		for j, cell := range w {
			if got[i][j] != cell {
				t.Errorf("row %d cell %d = %q, want %q (row %q)", i, j, got[i][j], cell, got[i])
			}
		}
	}
	failures := map[string]string{"resource:Airlines": "0", "resource:Markup": "1", "resource:Products": "1", "resource:Rates:EUR": "2"}
	for _, r := range got[1:] {
		if r[6] != failures[r[0]] {
			t.Errorf("%s failures %q, want %s", r[0], r[6], failures[r[0]])
		}
	}
	if !strings.Contains(got[4][7], "rates API: 503 Service Unavailable") || !strings.Contains(got[3][7], "connection refused") {
		t.Errorf("errors not shown: %q, %q", got[4][7], got[3][7])
	}
	if !strings.Contains(got[2][7], `bad row <script>document.title="pwned"</script> & <b>bold</b>`) {
		t.Errorf("the markup error is not shown as text: %q", got[2][7])
	}
	if strings.Contains(dom, "<script>") || strings.Contains(dom, "<b>bold") {
		t.Error("the source's error became markup in the page")
	}
	if n := strings.Count(dom, `class="bad"`); n != 3 {
		t.Errorf("%d rows marked bad, want 3 (no data, or failing)", n)
	}

	dir := t.TempDir()
	file := dir + "/status.png"
	runChromium(t, bin, url, "--screenshot="+file, "--window-size=1280,330", "--hide-scrollbars")
	shot, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	// The page is not blank: the red of the failing rows is there.
	red := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r>>8 == 0xfd && g>>8 == 0xe8 && bl>>8 == 0xe8 {
				red++
			}
		}
	}
	if b.Dx() != 1280 || red == 0 {
		t.Errorf("screenshot %v with %d pixels of the failing rows' colour", b, red)
	}
	if *screenshot != "" {
		if err := os.WriteFile(*screenshot, shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", *screenshot)
	}
}
