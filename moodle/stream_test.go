package moodle_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/mimwarehouse/mim/moodle"
	"github.com/mimwarehouse/mim/moodle/moodletest"
	"github.com/mimwarehouse/mim/moodle/moodletest/recorded"
)

// eachUser collects what EachUser passes to fn.
func eachUser(c *moodle.Client, criteria ...moodle.Criterion) ([]moodle.User, []moodle.Warning, error) {
	var got []moodle.User
	warnings, err := c.EachUser(context.Background(), criteria, func(u *moodle.User) error {
		got = append(got, *u)
		return nil
	})
	return got, warnings, err
}

// EachUser streams exactly what GetUsers returns, raw bytes included.
func TestEachUserMatchesGetUsers(t *testing.T) {
	site := moodletest.NewServer(t, recorded.State())
	c := newClient(t, site, site.Token())
	for _, criteria := range [][]moodle.Criterion{nil, {{Key: "lastname", Value: "Smith"}}, {{Key: "lastname", Value: "Nobody-Here"}}} {
		want, wantWarnings, err := c.GetUsers(context.Background(), criteria...)
		if err != nil {
			t.Fatal(err)
		}
		got, warnings, err := eachUser(c, criteria...)
		if err != nil || len(got) != len(want) || len(warnings) != len(wantWarnings) {
			t.Fatalf("%v: %d users, %v, %v; GetUsers: %d users, %v", criteria, len(got), warnings, err, len(want), wantWarnings)
		}
		for i := range want {
			if got[i].ID != want[i].ID || !bytes.Equal(got[i].Raw, want[i].Raw) || got[i].IDNumber != want[i].IDNumber ||
				len(got[i].CustomFields) != len(want[i].CustomFields) {
				t.Fatalf("%v: user %d differs: %s\nGetUsers: %s", criteria, i, got[i].Raw, want[i].Raw)
			}
		}
	}
	// An unsupported criterion: Moodle answers every user and a warning.
	_, warnings, err := eachUser(c, moodle.Criterion{Key: "foo", Value: "bar"})
	if k, _ := moodle.KindOf(err); k != moodle.InvalidParameter || len(warnings) != 1 || warnings[0].Item != "foo" {
		t.Errorf("bad criterion: %v, %v", err, warnings)
	}
}

// A read that fails before or while the users stream in is sent again,
// and no user is passed twice; Moodle's exceptions and fn's errors are not
// retried.
func TestEachUserFailures(t *testing.T) {
	all := len(recorded.State().Users)
	for _, tc := range []struct {
		name  string
		fault moodletest.Fault
	}{
		{"503", moodletest.Fault{Status: 503}},
		{"HTML with status 200", moodletest.Fault{Body: "<!DOCTYPE html><html><title>Site under maintenance</title></html>"}},
		{"cut off among the users", moodletest.Fault{Truncate: 20_000}},
		{"cut off at once", moodletest.Fault{Truncate: 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			site := moodletest.NewServer(t, recorded.State())
			c := newClient(t, site, site.Token(), moodle.WithRetries(2))
			f := tc.fault
			f.Function, f.Times = "core_user_get_users", 2
			site.Inject(f)
			got, _, err := eachUser(c)
			// Three tries of lastname LIKE '%', then one of email LIKE '%'.
			if err != nil || site.Calls("core_user_get_users") != 3+1 {
				t.Fatalf("read through two failures: %v after %d calls", err, site.Calls("core_user_get_users"))
			}
			seen := map[moodle.Int]bool{}
			for _, u := range got {
				if seen[u.ID] {
					t.Fatalf("user %d passed twice", u.ID)
				}
				seen[u.ID] = true
			}
			if len(got) != all {
				t.Fatalf("%d users, want %d", len(got), all)
			}
			// For good: the read gives up, transiently.
			site.ClearFaults()
			f.Times = 0
			site.Inject(f)
			_, _, err = eachUser(c)
			var te *moodle.TransientError
			if !errors.As(err, &te) {
				t.Fatalf("read against a failing site: %v", err)
			}
		})
	}
	t.Run("exception", func(t *testing.T) {
		site := moodletest.NewServer(t, recorded.State())
		c := newClient(t, site, "not-the-token", moodle.WithRetries(2))
		_, _, err := eachUser(c)
		var me *moodle.Error
		if !errors.As(err, &me) || site.Calls("core_user_get_users") != 1 {
			t.Fatalf("bad token: %v after %d calls", err, site.Calls("core_user_get_users"))
		}
	})
	t.Run("fn fails", func(t *testing.T) {
		site := moodletest.NewServer(t, recorded.State())
		c := newClient(t, site, site.Token(), moodle.WithRetries(2))
		stop := errors.New("the writer refused")
		n := 0
		_, err := c.EachUser(context.Background(), nil, func(*moodle.User) error {
			if n++; n == 3 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || n != 3 || site.Calls("core_user_get_users") != 1 {
			t.Fatalf("fn's error: %v after %d users, %d calls", err, n, site.Calls("core_user_get_users"))
		}
	})
}

// Moodle drops from a criterion's answer every user whose searched field
// is empty: email LIKE '%' misses accounts without an e-mail address (two
// on the second recorded site), lastname LIKE '%' those without a last
// name. EachUser with no criteria reads both and misses neither.
func TestEachUserReadsUsersWithEmptyFields(t *testing.T) {
	st := recorded.Site2()
	for i := range st.Users {
		if st.Users[i].ID == 95 {
			st.Users[i].LastName = "" // an account created without a last name
		}
	}
	site := moodletest.NewServer(t, st)
	c := newClient(t, site, site.Token())
	got, warnings, err := eachUser(c)
	if err != nil || len(warnings) > 0 {
		t.Fatal(err, warnings)
	}
	ids := map[moodle.Int]bool{}
	for _, u := range got {
		ids[u.ID] = true
	}
	if len(got) != len(st.Users) || !ids[154] || !ids[222] || !ids[95] {
		t.Errorf("%d users of %d; 154 and 222 (no e-mail) %v %v, 95 (no last name) %v",
			len(got), len(st.Users), ids[154], ids[222], ids[95])
	}
}
