package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestScheduleAndCatalogChecked(t *testing.T) {
	_, err := Parse([]byte(`environment: test
schedule:
  nightly: "CRON_TZ=Europe/Nowhere 15 0 * * *"
  groups: "*/30 7-25 * * 1-5"
catalog:
  url: https://data.example.ac.uk
  marts: ["mart.dim_*", "stg.sits_student"]
  dataset_prefix: "MIM "
`), envOf(nil))
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("want a *config.Error, got %v", err)
	}
	text := err.Error()
	for _, want := range []string{
		`schedule.nightly`, `unknown time zone "Europe/Nowhere"`,
		`schedule.groups`, `hour "25"`,
		`catalog.marts[1]`, `catalog.dataset_prefix`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the problems do not mention %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "catalog.marts[0]") {
		t.Errorf("a valid glob was refused:\n%s", text)
	}
}

func TestCatalogDefaults(t *testing.T) {
	cfg, err := Parse([]byte("environment: test\nschedule: {nightly: \"@daily\"}\n"), envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Catalog.Marts, []string{"mart.*", "!mart.exp_*"}) || cfg.Catalog.DatasetPrefix != "mim-" {
		t.Errorf("catalog defaults = %v, %q", cfg.Catalog.Marts, cfg.Catalog.DatasetPrefix)
	}
}
