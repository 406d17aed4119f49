package docs

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// root is the repository, from examples/docs.
const root = "../.."

// pages are the Markdown files checked, relative to root.
var pages = []string{"README.md", "docs/tutorial.md", "docs/kafka-streams.md"}

// block is a fenced block of a Markdown page.
type block struct {
	line    int    // of the opening fence, 1-based
	lang    string // after the opening fence
	text    string // the lines between the fences, each ending in \n
	snippet string // the marker's target, "path" or "path#region"; "" if none
}

var markerRE = regexp.MustCompile(`^<!-- snippet: (\S+) -->$`)

// parseBlocks returns the fenced blocks of a Markdown page with the snippet
// marker on the line before each, if any.
func parseBlocks(t *testing.T, page string) []block {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, page))
	if err != nil {
		t.Fatal(err)
	}
	var (
		blocks []block
		cur    *block
		marker string
		sc     = bufio.NewScanner(strings.NewReader(string(data)))
	)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur != nil && strings.TrimSpace(line) == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.text += line + "\n"
		case strings.HasPrefix(line, "```"):
			cur = &block{line: n, lang: strings.TrimPrefix(line, "```"), snippet: marker}
			marker = ""
		default:
			if m := markerRE.FindStringSubmatch(line); m != nil {
				marker = m[1]
			} else if marker != "" {
				t.Errorf("%s:%d: a snippet marker must be followed by a fenced block", page, n-1)
				marker = ""
			}
		}
	}
	if cur != nil {
		t.Errorf("%s:%d: unclosed fenced block", page, cur.line)
	}
	return blocks
}

// source returns what a snippet marker names: a whole file ("path") or a
// region of it ("path#name"), the lines between "// snippet:begin name" and
// "// snippet:end name", trailing blank lines dropped and the leading tabs
// they share removed.
func source(target string) (string, error) {
	path, region, _ := strings.Cut(target, "#")
	data, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		return "", err
	}
	if region == "" {
		return string(data), nil
	}
	var (
		lines []string
		in    bool
		found bool
	)
	for line := range strings.Lines(string(data)) {
		switch strings.TrimSpace(line) {
		case "// snippet:begin " + region:
			in, found = true, true
			continue
		case "// snippet:end " + region:
			in = false
		}
		if in {
			lines = append(lines, strings.TrimSuffix(line, "\n"))
		}
	}
	if !found {
		return "", fmt.Errorf("%s has no region %q", path, region)
	}
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	indent := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		if n := len(l) - len(strings.TrimLeft(l, "\t")); indent < 0 || n < indent {
			indent = n
		}
	}
	var b strings.Builder
	for _, l := range lines {
		if len(l) >= indent && indent > 0 {
			l = l[indent:]
		}
		b.WriteString(l + "\n")
	}
	return b.String(), nil
}

// Every marked block is an exact copy of its source: the tutorial's code,
// topologies (the steps' tests compare those with Describe().Mermaid()) and
// outputs (compared with what the steps print), and the README's code.
func TestSnippetsMatchTheirSource(t *testing.T) {
	for _, page := range pages {
		marked := 0
		for _, b := range parseBlocks(t, page) {
			if b.snippet == "" {
				continue
			}
			marked++
			want, err := source(b.snippet)
			if err != nil {
				t.Errorf("%s:%d: %v", page, b.line, err)
				continue
			}
			if b.text != want {
				t.Errorf("%s:%d: the block differs from %s:\n--- block\n%s--- source\n%s", page, b.line, b.snippet, b.text, want)
			}
		}
		if page != "docs/kafka-streams.md" && marked == 0 {
			t.Errorf("%s: no snippet found", page)
		}
	}
}

// Every Go block of the pages is a checked snippet: the README's come from
// readme_test.go, which the module compiles and vets.
func TestEveryGoBlockIsChecked(t *testing.T) {
	for _, page := range pages {
		for _, b := range parseBlocks(t, page) {
			if b.lang == "go" && b.snippet == "" {
				t.Errorf("%s:%d: a Go block with no snippet marker (<!-- snippet: path#region -->)", page, b.line)
			}
		}
	}
}

// exported returns the exported top-level names of the kstream package (not
// its tests) and, per type, its exported methods and fields.
func exported(t *testing.T) (names map[string]bool, members map[string]map[string]bool) {
	t.Helper()
	fset := token.NewFileSet()
	dir := filepath.Join(root, "kstream")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	names, members = map[string]bool{}, map[string]map[string]bool{}
	member := func(typ, name string) {
		if members[typ] == nil {
			members[typ] = map[string]bool{}
		}
		members[typ][name] = true
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil {
					names[d.Name.Name] = true
					continue
				}
				typ := d.Recv.List[0].Type
				if s, ok := typ.(*ast.StarExpr); ok {
					typ = s.X
				}
				switch x := typ.(type) {
				case *ast.IndexExpr:
					typ = x.X
				case *ast.IndexListExpr:
					typ = x.X
				}
				if id, ok := typ.(*ast.Ident); ok {
					member(id.Name, d.Name.Name)
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						names[s.Name.Name] = true
						if st, ok := s.Type.(*ast.StructType); ok {
							for _, f := range st.Fields.List {
								for _, n := range f.Names {
									member(s.Name.Name, n.Name)
								}
							}
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							names[n.Name] = true
						}
					}
				}
			}
		}
	}
	return names, members
}

var (
	codeSpanRE = regexp.MustCompile("`[^`]+`")
	qualRE     = regexp.MustCompile(`\bkstream\.([A-Za-z_]\w*)(?:\.([A-Za-z_]\w*))?`)
)

// Every kstream.X (and kstream.X.Y, a method or field of X) that the pages
// name in code spans exists in the package. Members of aliased engine
// types cannot be seen from kstream's sources and are not checked.
func TestNamedIdentifiersExist(t *testing.T) {
	names, members := exported(t)
	for _, page := range pages {
		data, err := os.ReadFile(filepath.Join(root, page))
		if err != nil {
			t.Fatal(err)
		}
		checked := 0
		for _, span := range codeSpanRE.FindAllString(string(data), -1) {
			for _, m := range qualRE.FindAllStringSubmatch(span, -1) {
				checked++
				if !names[m[1]] {
					t.Errorf("%s: %s names kstream.%s, which the package does not declare", page, span, m[1])
					continue
				}
				if m[2] != "" && members[m[1]] != nil && !members[m[1]][m[2]] {
					t.Errorf("%s: %s names %s.%s, which kstream.%s does not have", page, span, m[1], m[2], m[1])
				}
			}
		}
		if page == "docs/kafka-streams.md" && checked < 50 {
			t.Errorf("%s: only %d kstream identifiers checked", page, checked)
		}
	}
}
