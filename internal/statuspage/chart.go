package statuspage

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strconv"
	"strings"
)

// chart is a small line chart of counts over runs, drawn as inline SVG so
// the page needs nothing from outside.
type chart struct {
	Title  string
	Unit   string
	X      []string // labels, oldest first
	Series []series
	Err    string
}

type series struct {
	Name   string
	Values []*float64 // by X; nil where the series has no value
}

// palette is readable on white and for the common colour blindnesses.
var palette = []string{"#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#000000"}

const (
	chartW, chartH           = 520, 150
	padL, padR, padT, padB   = 56, 12, 10, 22
	plotW, plotH             = chartW - padL - padR, chartH - padT - padB
	maxLegend                = 7
	legendRowH, legendChars  = 14, 18
	legendPerRow             = 4
	legendColumnWidth        = (chartW - padL) / legendPerRow
	emptyChartMessageYOffset = 4
)

// SVG renders the chart; an empty chart says so instead of drawing axes.
func (c chart) SVG() template.HTML {
	var b strings.Builder
	n := len(c.X)
	legendRows := (min(len(c.Series), maxLegend) + legendPerRow - 1) / legendPerRow
	h := chartH + legendRows*legendRowH
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s">`,
		chartW, h, chartW, h, html.EscapeString(c.Title))
	if n == 0 || len(c.Series) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="empty">no data yet</text></svg>`, chartW/2, chartH/2+emptyChartMessageYOffset)
		return template.HTML(b.String())
	}
	top := 0.0
	for _, s := range c.Series {
		for _, v := range s.Values {
			if v != nil && *v > top {
				top = *v
			}
		}
	}
	top = niceCeil(top)
	x := func(i int) float64 {
		if n == 1 {
			return padL + plotW/2
		}
		return padL + float64(i)*plotW/float64(n-1)
	}
	y := func(v float64) float64 { return padT + plotH - v/top*plotH }
	// Axes and the top and middle gridlines with their values.
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" class="axis"/>`, padL, padT+plotH, padL+plotW, padT+plotH)
	for _, f := range []float64{0.5, 1} {
		gy := y(top * f)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" class="grid"/>`, padL, gy, padL+plotW, gy)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" class="tick" text-anchor="end">%s</text>`, padL-4, gy+4, short(top*f))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" class="tick" text-anchor="end">0</text>`, padL-4, padT+plotH+4)
	fmt.Fprintf(&b, `<text x="%d" y="%d" class="tick">%s</text>`, padL, chartH-6, html.EscapeString(c.X[0]))
	if n > 1 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="tick" text-anchor="end">%s</text>`, padL+plotW, chartH-6, html.EscapeString(c.X[n-1]))
	}
	for si, s := range c.Series {
		colour := palette[si%len(palette)]
		var pts []string
		flush := func() {
			if len(pts) > 1 {
				fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, colour, strings.Join(pts, " "))
			}
			pts = pts[:0]
		}
		for i, v := range s.Values {
			if v == nil {
				flush()
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(i), y(*v)))
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"><title>%s %s: %s %s</title></circle>`,
				x(i), y(*v), colour, html.EscapeString(s.Name), html.EscapeString(c.X[i]), short(*v), html.EscapeString(c.Unit))
		}
		flush()
		if si < maxLegend {
			lx := padL + (si%legendPerRow)*legendColumnWidth
			ly := chartH + (si/legendPerRow)*legendRowH + 4
			name := s.Name
			if len(name) > legendChars {
				name = name[:legendChars-1] + "…"
			}
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d" class="legend">%s</text>`,
				lx, ly, colour, lx+14, ly+9, html.EscapeString(name))
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// short writes a count compactly: 950, 12.5k, 3.2M.
func short(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return trim(fmt.Sprintf("%.1f", v/1e6)) + "M"
	case a >= 1e4:
		return trim(fmt.Sprintf("%.1f", v/1e3)) + "k"
	case a == math.Trunc(a):
		return fmt.Sprintf("%.0f", v)
	case a < 1:
		return strconv.FormatFloat(v, 'g', 2, 64)
	}
	return trim(fmt.Sprintf("%.2f", v))
}

func trim(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}
