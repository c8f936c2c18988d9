package main

import (
	"fmt"
	"math"
	"strings"
)

// plot draws the reload time against the record's size, both axes
// logarithmic: Go, Python and a bare GET of the record, from the medians.
func plot(reloads []reload) string {
	const (
		width, height = 760, 440
		left, right   = 80, 210
		top, bottom   = 40, 60
	)
	type series struct {
		name, color, dash string
		ns                func(reload) float64
	}
	all := []series{
		{"Python kiwi-cache 0.4.5", "#d62728", "", func(r reload) float64 { return r.pyNS }},
		{"Go kiwicache, one round trip", "#1f77b4", "", func(r reload) float64 { return r.goNS }},
		{"Go kiwicache, polled", "#2ca02c", "2,3", func(r reload) float64 { return r.polledNS }},
		{"bare GET (the floor)", "#7f7f7f", "5,4", func(r reload) float64 { return r.getNS }},
	}
	// The axes span whole decades around the data.
	minX, maxX, minY, maxY := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, r := range reloads {
		for _, s := range all {
			if ns := s.ns(r); ns > 0 && r.bytes > 0 {
				minX, maxX = math.Min(minX, float64(r.bytes)), math.Max(maxX, float64(r.bytes))
				minY, maxY = math.Min(minY, ns/1e6), math.Max(maxY, ns/1e6)
			}
		}
	}
	x0, x1 := math.Floor(math.Log10(minX)), math.Ceil(math.Log10(maxX))
	y0, y1 := math.Floor(math.Log10(minY)), math.Ceil(math.Log10(maxY))
	if x1 == x0 {
		x1++
	}
	if y1 == y0 {
		y1++
	}
	px := func(bytes float64) float64 {
		return left + (math.Log10(bytes)-x0)/(x1-x0)*(width-left-right)
	}
	py := func(ms float64) float64 {
		return height - bottom - (math.Log10(ms)-y0)/(y1-y0)*(height-top-bottom)
	}

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">Reload of a changed record: time against size (log-log, medians)</text>`+"\n", left)
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" fill="#555">labels: items, and Go kiwicache's speed over Python's (one round trip)</text>`+"\n", left, height-8)
	// Grid and ticks, one per decade.
	for e := x0; e <= x1; e++ {
		x := px(math.Pow(10, e))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", x, top, x, height-bottom)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x, height-bottom+18, bytesLabel(math.Pow(10, e)))
	}
	for e := y0; e <= y1; e++ {
		y := py(math.Pow(10, e))
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", left, y, width-right, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, y+4, msLabel(math.Pow(10, e)))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>`+"\n", left, top, width-left-right, height-top-bottom)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">record size</text>`+"\n", (left+width-right)/2, height-bottom+40)
	fmt.Fprintf(&b, `<text transform="translate(22 %d) rotate(-90)" text-anchor="middle">reload time</text>`+"\n", (top+height-bottom)/2)
	// The series, and the item counts under the Go points.
	for i, s := range all {
		var points []string
		for _, r := range reloads {
			if ns := s.ns(r); ns > 0 && r.bytes > 0 {
				points = append(points, fmt.Sprintf("%.1f,%.1f", px(float64(r.bytes)), py(ns/1e6)))
			}
		}
		if len(points) == 0 {
			continue
		}
		dash := ""
		if s.dash != "" {
			dash = fmt.Sprintf(` stroke-dasharray="%s"`, s.dash)
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(points, " "), s.color, dash)
		for _, p := range points {
			xy := strings.Split(p, ",")
			fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="3.5" fill="%s"/>`+"\n", xy[0], xy[1], s.color)
		}
		ly := top + 20 + 22*i
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>`+"\n", width-right+12, ly, width-right+36, ly, s.color, dash)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", width-right+42, ly+4, s.name)
	}
	// The item counts and Go's speed over Python's, above the top line.
	for _, r := range reloads {
		if r.goNS > 0 && r.bytes > 0 {
			label, top := thousands(r.items)+" items", r.goNS
			if r.pyNS > 0 {
				label += fmt.Sprintf(": %.1fx", r.pyNS/r.goNS)
				top = max(top, r.pyNS)
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#1f77b4" font-size="11">%s</text>`+"\n",
				px(float64(r.bytes)), py(top/1e6)-10, label)
		}
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func bytesLabel(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%g GB", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%g MB", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%g KB", v/1e3)
	}
	return fmt.Sprintf("%g B", v)
}

func msLabel(v float64) string {
	switch {
	case v >= 1e3:
		return fmt.Sprintf("%g s", v/1e3)
	case v >= 1:
		return fmt.Sprintf("%g ms", v)
	}
	return fmt.Sprintf("%g µs", v*1e3)
}
