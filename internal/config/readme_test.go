package config

import (
	"os"
	"strings"
	"testing"

	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// TestReadmeTableMatchesVariables keeps the README's configuration table in step with
// the variables Load reads: same names, same order, same defaults.
func TestReadmeTableMatchesVariables(t *testing.T) {
	ztest.NoLeaks(t)
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]string
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), " | ")
		if len(cells) != 3 {
			t.Fatalf("README row has %d cells: %q", len(cells), line)
		}
		rows = append(rows, []string{strings.Trim(strings.TrimSpace(cells[0]), "`"), strings.TrimSpace(cells[1])})
	}
	if len(rows) != len(variables) {
		t.Errorf("README lists %d variables, the code declares %d", len(rows), len(variables))
	}
	for i := 0; i < len(rows) && i < len(variables); i++ {
		if rows[i][0] != variables[i].Name || rows[i][1] != variables[i].Default {
			t.Errorf("README row %d = %s (default %q); code has %s (default %q)",
				i+1, rows[i][0], rows[i][1], variables[i].Name, variables[i].Default)
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
