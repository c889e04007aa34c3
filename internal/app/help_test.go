package app_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mimwarehouse/mim/internal/app"
)

// noHelp are the commands whose usage says all (no help/NAME.txt).
var noHelp = map[string]bool{"version": true}

// placeholder is what a help file leaves for its command to fill in (the
// drills' list in help/drill.txt).
var placeholder = regexp.MustCompile(`\{[a-z]+\}`)

// Every command has its help file and shows it, and the help folder holds
// nothing else.
func TestEveryCommandHasItsHelpFile(t *testing.T) {
	files := map[string]bool{}
	entries, err := os.ReadDir("help")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range entries {
		files[d.Name()] = true
	}
	for _, c := range app.Commands() {
		name := c.Name + ".txt"
		if noHelp[c.Name] {
			if files[name] || c.Help != "" {
				t.Errorf("%s: listed as having no help, but it has a help file or help", c.Name)
			}
			continue
		}
		delete(files, name)
		text, err := os.ReadFile(filepath.Join("help", name))
		if err != nil {
			t.Errorf("%s: %v", c.Name, err)
			continue
		}
		if !strings.HasSuffix(string(text), "\n") || strings.TrimSpace(string(text)) == "" {
			t.Errorf("help/%s is empty or does not end with a newline", name)
		}
		for _, ph := range placeholder.FindAllString(string(text), -1) {
			if strings.Contains(c.Help, ph) {
				t.Errorf("%s: its help leaves %s unfilled:\n%s", c.Name, ph, c.Help)
			}
		}
		rest := c.Help
		for _, part := range placeholder.Split(strings.TrimSuffix(string(text), "\n"), -1) {
			i := strings.Index(rest, part)
			if i < 0 {
				t.Errorf("%s: its help does not show help/%s as written; missing:\n%s", c.Name, name, part)
				break
			}
			rest = rest[i+len(part):]
		}
	}
	for name := range files {
		t.Errorf("help/%s belongs to no command", name)
	}
}
