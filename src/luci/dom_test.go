package luci

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// page is a DOM as chromium dumped it.
type page struct{ root *html.Node }

func parsePage(t testing.TB, dump []byte) page {
	t.Helper()
	root, err := html.Parse(bytes.NewReader(dump))
	if err != nil {
		t.Fatalf("parse the dumped DOM: %v", err)
	}
	return page{root}
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

func hasClass(n *html.Node, class string) bool {
	v, _ := attr(n, "class")
	return slices.Contains(strings.Fields(v), class)
}

// find returns the first element under n (n included) for which match holds.
func find(n *html.Node, match func(*html.Node) bool) *html.Node {
	if n == nil {
		return nil
	}
	if n.Type == html.ElementNode && match(n) {
		return n
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if f := find(c, match); f != nil {
			return f
		}
	}
	return nil
}

// findAll returns every element under n for which match holds, in document
// order, without looking inside the ones found.
func findAll(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type != html.ElementNode {
			continue
		}
		if match(c) {
			out = append(out, c)
			continue
		}
		out = append(out, findAll(c, match)...)
	}
	return out
}

func (p page) byID(id string) *html.Node {
	return find(p.root, func(n *html.Node) bool { v, _ := attr(n, "id"); return v == id })
}

func byTag(tag string) func(*html.Node) bool {
	return func(n *html.Node) bool { return n.Data == tag }
}

// text is the text content of n with runs of white space made one space.
func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	if n != nil {
		walk(n)
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// table is a rendered LuCI table: its column titles and the text of the
// cells of each data row (the title row and a placeholder row left out).
type table struct {
	titles []string
	rows   [][]string
	cells  [][]*html.Node
}

func (p page) table(t testing.TB, id string) table {
	t.Helper()
	tn := p.byID(id)
	if tn == nil {
		t.Fatalf("no element #%s in the page", id)
	}
	var out table
	for _, tr := range findAll(tn, func(n *html.Node) bool { return hasClass(n, "tr") }) {
		if hasClass(tr, "table-titles") {
			for _, th := range findAll(tr, func(n *html.Node) bool { return hasClass(n, "th") }) {
				out.titles = append(out.titles, text(th))
			}
			continue
		}
		if hasClass(tr, "placeholder") {
			continue
		}
		var row []string
		var cells []*html.Node
		for _, td := range findAll(tr, func(n *html.Node) bool { return hasClass(n, "td") }) {
			row = append(row, text(td))
			cells = append(cells, td)
		}
		out.rows = append(out.rows, row)
		out.cells = append(out.cells, cells)
	}
	return out
}

// col is the index of a column by its title.
func (tb table) col(t testing.TB, title string) int {
	t.Helper()
	i := slices.Index(tb.titles, title)
	if i < 0 {
		t.Fatalf("no column %q in %v", title, tb.titles)
	}
	return i
}

// rowWhere returns the first row whose column title has the value want.
func (tb table) rowWhere(t testing.TB, title, want string) (int, []string) {
	t.Helper()
	c := tb.col(t, title)
	for i, r := range tb.rows {
		if c < len(r) && r[c] == want {
			return i, r
		}
	}
	return -1, nil
}
