package app_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mimwarehouse/mim/export/feeds/feedstest"
	"github.com/mimwarehouse/mim/internal/pgtest"
)

func exportTarget(n int) []feedstest.Membership {
	var out []feedstest.Membership
	for i := range n {
		out = append(out, feedstest.Membership{Instance: "main", CourseIDNumber: fmt.Sprintf("C%d", i%4),
			UserIDNumber: fmt.Sprintf("2500%04d", i), RoleType: "student", Status: 1})
	}
	return out
}

func TestExportCommand(t *testing.T) {
	db := pgtest.New(t)
	out := t.TempDir()
	cfg := writeConfig(t, fmt.Sprintf(`environment: test
warehouse: {dsn: "%s"}
moodle:
  - {name: main, url: "https://moodle.example.ac.uk", token: "x", environment: test, ims_target: moodle-main}
exports: {dir: "%s"}
`, db.DSN.Reveal(), out))
	file := filepath.Join(out, "ims-main.xml")

	if code, stdout, _ := mim(t, "export", "--help"); code != 0 || !strings.Contains(stdout, "mim export [--dry-run] [--full]") ||
		!strings.Contains(stdout, "threshold_override") || !strings.Contains(stdout, "does not stop the others") {
		t.Errorf("--help: %d\n%s", code, stdout)
	}
	if code, _, errOut := mim(t, "--config", cfg, "export", "--feed", "grades"); code != 2 || !strings.Contains(errOut, "not a feed") {
		t.Errorf("bad --feed: %d %s", code, errOut)
	}
	if code, _, errOut := mim(t, "--config", cfg, "export", "--instance", "nosuch"); code != 2 || !strings.Contains(errOut, "nosuch") {
		t.Errorf("bad --instance: %d %s", code, errOut)
	}

	feedstest.FillMemberships(t, db.Pool, exportTarget(40))
	code, stdout, errOut := mim(t, "--config", cfg, "export", "--dry-run")
	if code != 0 || !strings.Contains(stdout, "DRY RUN") || !strings.Contains(stdout, "40 adds") {
		t.Errorf("dry run: %d\n%s%s", code, stdout, errOut)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Error("a dry run wrote the file")
	}
	code, stdout, errOut = mim(t, "--config", cfg, "export", "--feed", "ims")
	if code != 0 || !strings.Contains(stdout, "main/ims: PUBLISHED") {
		t.Fatalf("export: %d\n%s%s", code, stdout, errOut)
	}
	if _, err := os.Stat(file); err != nil {
		t.Errorf("no file: %v", err)
	}
	// Half the students gone: refused, exit 3; the rollover's dry run shows it
	// would still be refused (the rollover arms no override, and these courses
	// have no mapping for it to freeze).
	feedstest.FillMemberships(t, db.Pool, exportTarget(20))
	code, stdout, errOut = mim(t, "--config", cfg, "export", "--feed", "ims")
	if code != 3 || !strings.Contains(stdout, "main/ims: REFUSED") || !strings.Contains(errOut, "threshold") {
		t.Errorf("breach: %d\n%s%s", code, stdout, errOut)
	}
	code, stdout, errOut = mim(t, "--config", cfg, "rollover", "--year", "2026", "--no-transform")
	if code != 0 || !strings.Contains(stdout, "main ims: 0 adds, 20 drops") || !strings.Contains(stdout, "would be refused") {
		t.Errorf("rollover preview: %d\n%s%s", code, stdout, errOut)
	}
}
