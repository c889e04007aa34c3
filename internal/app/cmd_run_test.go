package app_test

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/mimwarehouse/mim/internal/app"
	"github.com/mimwarehouse/mim/internal/demo"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/synth"
	"github.com/mimwarehouse/mim/internal/synth/synthworld"
	"github.com/mimwarehouse/mim/moodle/moodletest"
)

// world is a synthetic university in a migrated warehouse labelled env,
// with its Moodle sites running as simulators.
type world struct {
	db    *pgtest.DB
	in    *synth.Institution
	sites []demo.Site
	sims  map[string]*moodletest.Site
}

// newWorld builds the world; prepare, if given, may change the synthetic
// institution before it is written and its sites start.
func newWorld(t *testing.T, env string, prepare ...func(*synth.Institution)) *world {
	t.Helper()
	c := synthworld.NewCampus(t, env, prepare...)
	w := &world{db: c.DB, in: c.In, sims: c.Sims}
	for _, s := range c.In.Sites {
		site := c.Sims[s.Name]
		w.sites = append(w.sites, demo.Site{Name: s.Name, URL: site.URL(), Token: site.Token()})
	}
	return w
}

func (w *world) env(t *testing.T, sites []demo.Site) (*app.Env, *syncBuffer) {
	t.Helper()
	cfg, err := demo.Config(w.db.DSN.Reveal(), t.TempDir(), w.in.Year, sites)
	if err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	e := &app.Env{Stdout: out, Stderr: io.Discard, Logger: slog.New(slog.DiscardHandler)}
	e.SetConfig(cfg)
	t.Cleanup(e.Close)
	return e, out
}

// The command's own part: its help and its flags (the runs themselves are
// internal/night's tests).
func TestRunUsage(t *testing.T) {
	code, out, _ := mim(t, "help", "run")
	if code != 0 || !strings.Contains(out, "A stage's failure stops what depends on it") || !strings.Contains(out, "--stages") {
		t.Errorf("help run: %d\n%s", code, out)
	}
	cfg := writeConfig(t, "environment: test\n")
	if code, _, errOut := mim(t, "--config", cfg, "run", "--stages", "extract,publish"); code != 2 || !strings.Contains(errOut, `"publish" is not a stage`) {
		t.Errorf("--stages publish: %d %s", code, errOut)
	}
}
