// Package kiwistatus serves a status page of kiwicache caches: every cache of
// a kiwicache.Registry with its Health, as JSON for machines and as an HTML
// table when a browser asks, in the manner of net/http/pprof's index:
//
//	http.Handle("/debug/kiwicache", kiwistatus.Handler(kiwicache.DefaultRegistry()))
//
// The page shows record keys and error texts (which can name hosts and
// tables): mount it where only operators reach it, as one does pprof.
package kiwistatus

import (
	"encoding/json"
	"html/template"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kiwicache/kiwicache"
)

// Handler returns a handler of GET and HEAD requests that lists the caches of
// reg, sorted by key, with their Health read at the request. It answers with
// HTML when the request's Accept header prefers text/html to
// application/json (as a browser's does), with JSON otherwise; the query
// ?format=json or ?format=html chooses explicitly. A nil reg lists nothing.
func Handler(reg *kiwicache.Registry) http.Handler {
	return &handler{reg: reg}
}

type handler struct {
	reg *kiwicache.Registry
}

// Page is the JSON document the handler serves.
type Page struct {
	Time   time.Time `json:"time"` // when the Health was read
	Caches []Cache   `json:"caches"`
}

// Cache is one cache's Health in the JSON document. Times that are unknown
// (no snapshot, no error, ...) are left out, and so are the ages computed from
// them.
type Cache struct {
	Key                 string    `json:"key"`
	Name                string    `json:"name"`
	Suffix              string    `json:"suffix,omitempty"`
	HasData             bool      `json:"has_data"`
	Items               int       `json:"items"`
	RecordBytes         int       `json:"record_bytes"`
	RecordTime          time.Time `json:"record_time,omitzero"`
	LoadedAt            time.Time `json:"loaded_at,omitzero"`
	CheckedAt           time.Time `json:"checked_at,omitzero"`
	ConsecutiveFailures int       `json:"consecutive_failures"`
	LastError           string    `json:"last_error,omitempty"`
	LastErrorTime       time.Time `json:"last_error_time,omitzero"`
	PushConnected       bool      `json:"push_connected"`
	LastNotification    time.Time `json:"last_notification,omitzero"`
	// SnapshotAgeSeconds is Page.Time - RecordTime: how old the served data
	// is, by this host's clock against the writer's.
	SnapshotAgeSeconds *float64 `json:"snapshot_age_seconds,omitempty"`
	// CheckAgeSeconds is Page.Time - CheckedAt.
	CheckAgeSeconds *float64 `json:"check_age_seconds,omitempty"`
}

// Healthy reports whether the cache serves data and its last attempt
// succeeded: the page marks the others.
func (c Cache) Healthy() bool { return c.HasData && c.ConsecutiveFailures == 0 }

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	page := h.page()
	w.Header().Set("Vary", "Accept")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if wantsHTML(r) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		pageHTML.Execute(w, page) // an error here is the client's connection
		return
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(page) // an error here is the client's connection
}

func (h *handler) page() Page {
	now := time.Now()
	p := Page{Time: now.UTC(), Caches: []Cache{}}
	if h.reg == nil {
		return p
	}
	for _, hl := range h.reg.Health() {
		c := Cache{
			Key:                 hl.Key,
			HasData:             hl.HasData,
			Items:               hl.Items,
			RecordBytes:         hl.RecordSize,
			RecordTime:          utc(hl.RecordTime),
			LoadedAt:            utc(hl.LoadedAt),
			CheckedAt:           utc(hl.CheckedAt),
			ConsecutiveFailures: hl.ConsecutiveFailures,
			LastErrorTime:       utc(hl.LastErrorTime),
			PushConnected:       hl.PushConnected,
			LastNotification:    utc(hl.LastNotification),
		}
		var err error
		if c.Name, c.Suffix, err = kiwicache.ParseName(hl.Key); err != nil {
			c.Name = strings.TrimPrefix(hl.Key, "resource:") // a Refiller of the caller's own
		}
		if hl.LastError != nil {
			c.LastError = hl.LastError.Error()
		}
		if hl.HasData {
			c.SnapshotAgeSeconds = age(now, hl.RecordTime)
		}
		c.CheckAgeSeconds = age(now, hl.CheckedAt)
		p.Caches = append(p.Caches, c)
	}
	return p
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

func age(now, t time.Time) *float64 {
	if t.IsZero() {
		return nil
	}
	s := now.Sub(t).Seconds()
	return &s
}

// wantsHTML: ?format= when given, else whether Accept ranks text/html (or
// XHTML) at least as high as JSON, and above zero. A client that sends no
// Accept, or */* (curl), gets JSON.
func wantsHTML(r *http.Request) bool {
	switch r.URL.Query().Get("format") {
	case "html":
		return true
	case "json":
		return false
	}
	var htmlQ, jsonQ float64
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mediaType, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if s, ok := params["q"]; ok {
			if q, err = strconv.ParseFloat(s, 64); err != nil {
				continue
			}
		}
		switch mediaType {
		case "text/html", "application/xhtml+xml":
			htmlQ = max(htmlQ, q)
		case "application/json":
			jsonQ = max(jsonQ, q)
		}
	}
	return htmlQ > 0 && htmlQ >= jsonQ
}

// formatAge formats the time since t for the page: "4.2s", "3m10s", "2h5m".
func formatAge(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < 0:
		return "in " + formatAge(t, now) // the writer's clock is ahead of this host's
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	default:
		return d.Round(time.Minute).String()
	}
}

// formatBytes formats a size for the page: 433 B, 1.2 MB.
func formatBytes(n int) string {
	switch {
	case n < 1000:
		return strconv.Itoa(n) + " B"
	case n < 1000*1000:
		return strconv.FormatFloat(float64(n)/1e3, 'f', 1, 64) + " kB"
	case n < 1000*1000*1000:
		return strconv.FormatFloat(float64(n)/1e6, 'f', 1, 64) + " MB"
	default:
		return strconv.FormatFloat(float64(n)/1e9, 'f', 1, 64) + " GB"
	}
}

var pageHTML = template.Must(template.New("page").Funcs(template.FuncMap{
	"ago":   formatAge,
	"bytes": formatBytes,
	"stamp": func(t time.Time) string { return t.Format("2006-01-02 15:04:05.000 MST") },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>kiwicache status</title>
<style>
body { font-family: sans-serif; font-size: 14px; margin: 1em 2em; }
h1 { font-size: 1.4em; }
table { border-collapse: collapse; }
th, td { padding: 0.25em 0.8em; text-align: left; border-bottom: 1px solid #ddd; vertical-align: top; }
th { background: #f0f0f0; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.key { font-family: monospace; }
tr.bad td { background: #fde8e8; }
.error { color: #a00; font-family: monospace; white-space: pre-wrap; max-width: 40em; }
.dim { color: #777; }
</style>
</head>
<body>
<h1>kiwicache status</h1>
<p>{{len .Caches}} caches at {{stamp .Time}}. <a href="?format=json">JSON</a></p>
{{- $now := .Time}}
<table id="caches">
<thead>
<tr><th>Record key</th><th>Data</th><th>Items</th><th>Record</th><th>Data age</th><th>Checked</th><th>Failures</th><th>Last error</th><th>Push</th></tr>
</thead>
<tbody>
{{- range .Caches}}
<tr{{if not .Healthy}} class="bad"{{end}} data-key="{{.Key}}">
<td class="key">{{.Key}}</td>
<td>{{if .HasData}}yes{{else}}<b>none</b>{{end}}</td>
<td class="num">{{.Items}}</td>
<td class="num">{{if .HasData}}{{bytes .RecordBytes}}{{end}}</td>
<td>{{if and .HasData (not .RecordTime.IsZero)}}<span title="{{stamp .RecordTime}}">{{ago $now .RecordTime}}</span>{{else}}<span class="dim">-</span>{{end}}</td>
<td>{{if .CheckedAt.IsZero}}<span class="dim">never</span>{{else}}<span title="{{stamp .CheckedAt}}">{{ago $now .CheckedAt}} ago</span>{{end}}</td>
<td class="num">{{.ConsecutiveFailures}}</td>
<td>{{if .LastError}}<div class="error">{{.LastError}}</div><span class="dim" title="{{stamp .LastErrorTime}}">{{ago $now .LastErrorTime}} ago</span>{{else}}<span class="dim">-</span>{{end}}</td>
<td>{{if .PushConnected}}connected{{else}}<span class="dim">off</span>{{end}}{{if not .LastNotification.IsZero}}<br><span class="dim" title="{{stamp .LastNotification}}">last {{ago $now .LastNotification}} ago</span>{{end}}</td>
</tr>
{{- else}}
<tr><td colspan="9" class="dim">No caches registered.</td></tr>
{{- end}}
</tbody>
</table>
</body>
</html>
`))
