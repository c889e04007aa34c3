package wire

import (
	"bytes"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mimwarehouse/mim/export/csvfeed"
	"github.com/mimwarehouse/mim/export/feeds"
	moodlex "github.com/mimwarehouse/mim/extract/moodle"
	"github.com/mimwarehouse/mim/internal/config"
)

// full is a configuration with every field set (strings "x1", numbers 1,
// flags true, one element in every list and map), so a conversion that
// forgets a field leaves it zero.
func full(t *testing.T) *config.Config {
	t.Helper()
	cfg := &config.Config{}
	fill(reflect.ValueOf(cfg).Elem())
	return cfg
}

func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x1")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(1)
	case reflect.Float64:
		v.SetFloat(1)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem())
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0))
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k)
		fill(e)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	}
}

// zeros names the fields of v (a stage's options) left zero, descending
// into the structs and lists of this module's packages.
func zeros(v reflect.Value, path string) []string {
	if v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return []string{path}
		}
		if !strings.HasPrefix(v.Elem().Type().PkgPath(), "github.com/mimwarehouse/mim/") {
			return nil
		}
		return zeros(v.Elem(), path)
	}
	switch v.Kind() {
	case reflect.Struct:
		if !strings.HasPrefix(v.Type().PkgPath(), "github.com/mimwarehouse/mim/") {
			break
		}
		var out []string
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() {
				out = append(out, zeros(v.Field(i), path+"."+f.Name)...)
			}
		}
		return out
	case reflect.Slice:
		if v.Len() == 0 {
			return []string{path}
		}
		return zeros(v.Index(0), path+"[0]")
	}
	if v.IsZero() {
		return []string{path}
	}
	return nil
}

// notConfigured are options no configuration key sets.
var notConfigured = []string{
	"Feeds.ProfileFields[0].Field.Standard", // csvfeed's own standard columns (the carried idnumber)
	// What sits.New and cmis.New set: the source's name, parameters and contract.
	"CMIS.Source", "CMIS.Instance", "CMIS.Params", "CMIS.Contract",
	"SITS.Read.Source", "SITS.Read.Instance", "SITS.Read.Params", "SITS.Read.Contract",
}

// Every option a stage declares is carried over from the configuration: a
// field added to a stage's options and not wired here fails this test.
func TestEveryOptionIsWired(t *testing.T) {
	cfg := full(t)
	for name, got := range map[string]any{
		"Feeds":      Feeds(cfg),
		"GroupSite":  GroupSite(&cfg.Moodle[0]),
		"GuardSite":  GuardSite(&cfg.Moodle[0]),
		"Notify":     Notify(cfg),
		"Knowledge":  Knowledge(cfg),
		"MartConfig": MartConfig(cfg),
		"SITS":       SITS(cfg.Sources.SITS),
		"MoodleSite": MoodleSite(&cfg.Moodle[0]),
		"CMIS":       SQLRead(cfg.Sources.CMIS),
	} {
		z := slices.DeleteFunc(zeros(reflect.ValueOf(got), name), func(p string) bool { return slices.Contains(notConfigured, p) })
		if len(z) > 0 {
			t.Errorf("left zero: %s", strings.Join(z, ", "))
		}
	}
}

// The site's enrolment feed and time zone are converted, not copied.
func TestFeedSite(t *testing.T) {
	s := FeedSite(&config.MoodleSite{Name: "main", EnrolmentFeed: config.EnrolmentFlatfile, Timezone: "Europe/London"})
	if s.EnrolmentFeed != feeds.Flatfile || s.Location.String() != "Europe/London" {
		t.Errorf("flat-file site: %+v", s)
	}
	s = FeedSite(&config.MoodleSite{Name: "main", EnrolmentFeed: config.EnrolmentIMS})
	if s.EnrolmentFeed != feeds.IMS || s.Location != time.UTC {
		t.Errorf("IMS site: %+v", s)
	}
	off := false
	cfg := &config.Config{Exports: config.Exports{Merge: config.Merge{CarryIDNumber: &off}}}
	if Feeds(cfg).CarryIDNumber || !Feeds(&config.Config{}).CarryIDNumber {
		t.Error("carry_idnumber: off when set off, on by default")
	}
}

// The profile fields keep their order, columns and checks: the CSV writer
// refuses a value outside a menu's options.
func TestProfileFields(t *testing.T) {
	pf := ProfileFields([]config.ProfileField{
		{Column: "student_number", Shortname: "studentno", Required: true},
		{Column: "ug_pg", Shortname: "ugpg", Type: "menu", Options: []string{"UG", "PG"}},
	})
	if len(pf) != 2 || pf[0].Column != "student_number" || pf[1].Column != "ug_pg" || pf[1].Type != csvfeed.Menu || !pf[0].Required {
		t.Fatalf("fields %+v", pf)
	}
	var buf bytes.Buffer
	w, err := csvfeed.NewWriter(&buf, []csvfeed.Field{pf[0].Field, pf[1].Field})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write("u1", "1", "XX"); err == nil {
		t.Error("a value outside the configured options was accepted")
	}
	_ = w.Close()
	if !strings.HasPrefix(buf.String(), "username,profile_field_studentno,profile_field_ugpg\n") {
		t.Errorf("header %q", buf.String())
	}
}

// The configuration accepts exactly the mart columns the export can read.
func TestProfileColumnsAgree(t *testing.T) {
	if !slices.Equal(config.ProfileColumns, feeds.ProfileColumns) {
		t.Errorf("config accepts %v, the export reads %v", config.ProfileColumns, feeds.ProfileColumns)
	}
}

// The configuration accepts exactly the entities the extractor knows, and
// defaults to the same ones.
func TestMoodleEntitiesAgree(t *testing.T) {
	if !slices.Equal(config.MoodleEntities, moodlex.EntityNames) || !slices.Equal(config.DefaultMoodleEntities, moodlex.DefaultEntityNames) {
		t.Errorf("config: %v (default %v); extractor: %v (default %v)", config.MoodleEntities, config.DefaultMoodleEntities,
			moodlex.EntityNames, moodlex.DefaultEntityNames)
	}
}
