package moodle_test

import (
	"io"
	"testing"
	"time"

	"github.com/mimwarehouse/mim/extract"
	moodlex "github.com/mimwarehouse/mim/extract/moodle"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/moodle/moodletest"
	"github.com/mimwarehouse/mim/moodle/moodletest/recorded"
)

// site2 is the second recorded real site in the simulator, read at the time
// it was recorded, as the site called "main" configured with every entity.
func site2(t *testing.T, st moodletest.State) *testSite {
	t.Helper()
	token := "tokmainmainmainmain0123456789abcdef"
	sim := moodletest.NewServer(t, st, moodletest.WithToken(token),
		moodletest.WithClock(func() time.Time { return recorded.Site2Time }))
	return &testSite{sim: sim, token: token, logger: newTestSite(t, "x", moodletest.State{}, io.Discard).logger,
		cfg: &moodlex.Site{Name: "main", URL: sim.URL(), Environment: "test", Concurrency: 3, PageSize: 50,
			Entities: append([]string(nil), moodlex.DefaultEntityNames...)}}
}

// Defect 1 of the real-Moodle comparison: a criterion finds only users
// whose searched field is not empty, so email LIKE '%' left out the two
// accounts without an e-mail address (4 memberships fell out of the IMS
// file). Every user is extracted, whatever fields are empty.
func TestUsersWithEmptyFieldsAreExtracted(t *testing.T) {
	db := pgtest.New(t)
	st := recorded.Site2()
	for i := range st.Users {
		if st.Users[i].ID == 95 {
			st.Users[i].LastName = ""
		}
	}
	site := site2(t, st)
	if _, _, err := extractRun(t, db, site.source(t, db.Pool, extract.Options{Entities: []string{"users"}})); err != nil {
		t.Fatal(err)
	}
	if n := live(t, db.Pool, "main", "users"); n != int64(len(st.Users)) {
		t.Errorf("%d users extracted, the site has %d", n, len(st.Users))
	}
	if got := text(t, db.Pool, `SELECT coalesce(string_agg(key || ':' || (payload->>'email'), ',' ORDER BY key::int), '')
		FROM raw.record WHERE entity = 'users' AND key IN ('154', '222')`); got != "154:,222:" {
		t.Errorf("users without an e-mail address: %q", got)
	}
	if n := count(t, db.Pool, `SELECT count(*) FROM raw.record WHERE entity = 'users' AND key = '95'`); n != 1 {
		t.Error("the user without a last name was not extracted")
	}
}

// The demo and most tests read Moodle as its administrator; a real site
// gives MIM a web-service user with a role at system context. With the
// role the README's Moodle set-up section asks for, the extraction lands
// exactly what the administrator's would, but for the guest account's
// description, which Moodle shows only to the administrator.
func TestExtractWithWebServiceRole(t *testing.T) {
	st := recorded.Site2()
	admin, role := pgtest.New(t), pgtest.New(t)
	site := site2(t, st)
	if _, _, err := extractRun(t, admin, site.source(t, admin.Pool, extract.Options{})); err != nil {
		t.Fatal(err)
	}
	site.token = "mimws0123456789abcdef0123456789ab"
	site.sim.AddToken(moodletest.Token{Token: site.token, UserID: recorded.Site2WSUser, Capabilities: moodletest.WebServiceRole()})
	if _, reports, err := extractRun(t, role, site.source(t, role.Pool, extract.Options{})); err != nil {
		t.Fatal(err)
	} else {
		for _, r := range reports {
			if r.Err != nil {
				t.Errorf("%s: %v", r.ID.Entity, r.Err)
			}
		}
	}
	const dump = `SELECT coalesce(string_agg(entity || '/' || key || '=' || payload::text, E'\n' ORDER BY entity, key), '')
		FROM raw.record WHERE entity <> 'site_info' AND deleted_run IS NULL AND NOT (entity = 'users' AND key = '1')`
	got, want := text(t, role.Pool, dump), text(t, admin.Pool, dump)
	if got != want {
		t.Errorf("the web-service role's extraction differs from the administrator's:\n%s", firstDiff(got, want))
	}
	for _, c := range []struct {
		sql  string
		want int64
	}{
		{`SELECT count(*) FROM raw.record WHERE entity = 'users' AND payload ? 'username' AND payload ? 'email'`, 340},
		{`SELECT count(*) FROM raw.record WHERE entity = 'enrolments' AND jsonb_array_length(payload->'roles') > 0`, 124},
		{`SELECT count(*) FROM raw.record WHERE entity = 'groups'`, 2},
		{`SELECT count(*) FROM raw.record WHERE entity = 'profile_fields'`, 8},
	} {
		if n := count(t, role.Pool, c.sql); n != c.want {
			t.Errorf("%s: %d, want %d", c.sql, n, c.want)
		}
	}
}

// firstDiff shows where two dumps part.
func firstDiff(got, want string) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	from := max(i-200, 0)
	return "got  ..." + got[from:min(i+300, len(got))] + "\nwant ..." + want[from:min(i+300, len(want))]
}
