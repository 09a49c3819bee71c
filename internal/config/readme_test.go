package config

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

var update = flag.Bool("update", false, "rewrite the README's configuration table from the variables table")

// readmeRow is a variable's row in the README's configuration table.
func readmeRow(v Variable) string {
	return fmt.Sprintf("| `%s` | %s | %s |", v.Name, v.Default, v.Meaning)
}

// TestReadmeTableMatchesVariables keeps the README's configuration table the variables
// table, row for row (names, order, defaults, meanings). The README is generated:
// `go test ./internal/config -run Readme -update` rewrites it.
func TestReadmeTableMatchesVariables(t *testing.T) {
	ztest.NoLeaks(t)
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	// The configuration table is the first run of rows that start with a backquoted name;
	// later tables of that shape are prose.
	first, n := -1, 0
	for i, line := range lines {
		row := strings.HasPrefix(line, "| `")
		if row && first < 0 {
			first = i
		}
		if first >= 0 && !row {
			break
		}
		if row {
			n++
		}
	}
	if first < 0 {
		t.Fatal("README has no configuration table")
	}
	want := make([]string, len(variables))
	for i, v := range variables {
		want[i] = readmeRow(v)
	}
	if *update {
		out := slices.Concat(lines[:first], want, lines[first+n:])
		if err := os.WriteFile("../../README.md", []byte(strings.Join(out, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got := lines[first : first+n]
	if len(got) != len(want) {
		t.Errorf("README lists %d variables, the code declares %d (go test ./internal/config -run Readme -update)", len(got), len(want))
	}
	for i := 0; i < len(got) && i < len(want); i++ {
		if got[i] != want[i] {
			t.Errorf("README row %d =\n %s\nthe table's is\n %s\n(go test ./internal/config -run Readme -update)", i+1, got[i], want[i])
		}
	}
}

// TestEveryDeclaredVariableIsRead loads with every variable set and checks that each one
// in the table is read by Load, so the table lists nothing that does nothing.
func TestEveryDeclaredVariableIsRead(t *testing.T) {
	ztest.NoLeaks(t)
	seen := map[string]bool{}
	r := newReader(Source{FileExists: func(string) bool { return true }, IPv6: func() bool { return true }})
	r.onGet = func(name string) { seen[name] = true }
	r.loadAll()
	for _, v := range variables {
		if p, ok := familyPrefix(v.Name); ok {
			if !r.familyRead[p] {
				t.Errorf("family %s is declared but never read", v.Name)
			}
			continue
		}
		if !seen[v.Name] {
			t.Errorf("%s is declared but Load never reads it", v.Name)
		}
	}
}
