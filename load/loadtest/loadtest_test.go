package loadtest_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"testing"

	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/load"
	"github.com/mimwarehouse/mim/load/loadtest"
)

var users = extract.EntityID{Source: "moodle", Instance: "main", Entity: "users"}

// landed loads records of users through the real loader, as one run that
// read the whole entity.
func landed(t *testing.T, db *pgtest.DB, recs ...extract.Record) {
	t.Helper()
	ctx := context.Background()
	run, err := ledger.Begin(ctx, db.Pool, "extract", "test", "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer run.Finish(ctx, ledger.Succeeded, 0, nil)
	w, err := load.New(db.Pool, run).Entity(ctx, users)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.Write(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	w.ScopeComplete("")
	if _, err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

func user(key, name string) extract.Record {
	return extract.Record{Key: key, Payload: json.RawMessage(`{"name":"` + name + `"}`)}
}

// The readers see what the loader landed: counts, live counts, values and
// the history of changed and deleted records.
func TestReaders(t *testing.T) {
	db := pgtest.New(t)
	if n := loadtest.Count(t, db.Pool, ""); n != 0 {
		t.Fatalf("a new warehouse holds %d records", n)
	}
	landed(t, db, user("1", "Ann"), user("2", "Bob"), user("3", "Cy"))
	landed(t, db, user("1", "Anne"), user("2", "Bob"))
	if n := loadtest.Count(t, db.Pool, ""); n != 3 {
		t.Errorf("Count: %d records, want 3 (two live, one deleted)", n)
	}
	if n := loadtest.Count(t, db.Pool, "deleted_run IS NOT NULL AND key = $1", "3"); n != 1 {
		t.Errorf("Count with an argument: %d deleted records with key 3, want 1", n)
	}
	if n := loadtest.Live(t, db.Pool, users); n != 2 {
		t.Errorf("Live: %d, want 2", n)
	}
	if n := loadtest.Live(t, db.Pool, extract.EntityID{Source: "moodle", Instance: "other", Entity: "users"}); n != 0 {
		t.Errorf("Live of another instance: %d, want 0", n)
	}
	if n := loadtest.HistoryCount(t, db.Pool, "key = '1'"); n != 1 {
		t.Errorf("HistoryCount: %d earlier versions of key 1, want 1", n)
	}
	if n := loadtest.HistoryCount(t, db.Pool, ""); n != 1 {
		t.Errorf("HistoryCount: %d earlier versions, want 1 (deleting keeps the version in place)", n)
	}
	if got := loadtest.Text(t, db.Pool, "string_agg(key || '=' || (payload->>'name'), ',' ORDER BY key)", "deleted_run IS NULL"); got != "1=Anne,2=Bob" {
		t.Errorf("Text: %q", got)
	}
	if got := loadtest.Text(t, db.Pool, "payload->>'name'", "entity = $1 AND key = $2", "users", "3"); got != "Cy" {
		t.Errorf("Text with arguments: %q", got)
	}
	if got := loadtest.Lines(t, db.Pool, "key || ' ' || (deleted_run IS NULL)::text", "key <> $1", "key DESC", "2"); !slices.Equal(got, []string{"3 false", "1 true"}) {
		t.Errorf("Lines: %q", got)
	}
	if got := loadtest.Lines(t, db.Pool, "key", "key = '9'", ""); len(got) != 0 {
		t.Errorf("Lines of no record: %q", got)
	}
	if size := loadtest.Size(t, db.Pool); size == "" {
		t.Error("Size is empty")
	}
	loadtest.Analyze(t, db.Pool)
}

// Put lands a fixture record as the loader would have (live, hashed, of
// its run), replaces it when put again, and MarkDeleted deletes it.
func TestPutAndMarkDeleted(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	loadtest.Put(t, db.Pool, loadtest.Record{ID: users, Key: "7", Scope: "s", Payload: []byte(`{"name": "Dee"}`)})
	loadtest.Put(t, db.Pool, loadtest.Record{ID: users, Key: "8", Payload: []byte(`{"name": "Eve"}`), Run: 5})
	if got := loadtest.Text(t, db.Pool, "string_agg(key || ' ' || scope || ' ' || first_run || changed_run || seen_run || ' ' || (payload->>'name'), ',' ORDER BY key)", ""); got != "7 s 111 Dee,8  555 Eve" {
		t.Errorf("put: %q", got)
	}
	if got := loadtest.Text(t, db.Pool, "encode(hash, 'hex')", "key = '7'"); got != sha(`{"name": "Dee"}`) {
		t.Errorf("hash %s, want the SHA-256 of the payload", got)
	}
	live, err := load.IsLive(ctx, db.Pool, users, "7")
	if err != nil || !live {
		t.Errorf("the loader does not see the fixture record as live: %v %v", live, err)
	}
	loadtest.MarkDeleted(t, db.Pool, users, "7", 6)
	if live, err := load.IsLive(ctx, db.Pool, users, "7"); err != nil || live {
		t.Errorf("after MarkDeleted the record is live: %v %v", live, err)
	}
	if got := loadtest.Text(t, db.Pool, "deleted_run::text", "key = '7'"); got != "6" {
		t.Errorf("deleted by run %s, want 6", got)
	}
	loadtest.Put(t, db.Pool, loadtest.Record{ID: users, Key: "7", Payload: []byte(`{"name": "Dot"}`)})
	if got := loadtest.Text(t, db.Pool, "(payload->>'name') || ' ' || (deleted_run IS NULL)::text", "key = '7'"); got != "Dot true" {
		t.Errorf("put again: %q", got)
	}
	if got, want := loadtest.Text(t, db.Pool, "encode(hash, 'hex')", "key = '7'"), sha(`{"name": "Dot"}`); got != want {
		t.Errorf("hash %s after put again, want %s", got, want)
	}
}

// Copy lands many records as Put lands one.
func TestCopy(t *testing.T) {
	db := pgtest.New(t)
	loadtest.Copy(t, db.Pool, []loadtest.Record{
		{ID: users, Key: "1", Payload: []byte(`{"name": "Ann"}`)},
		{ID: users, Key: "2", Scope: "x", Payload: []byte(`{"name": "Bob"}`), Run: 3},
	})
	if got := loadtest.Text(t, db.Pool, "string_agg(key || ' ' || scope || ' ' || first_run || changed_run || seen_run || ' ' || (payload->>'name') || ' ' || (deleted_run IS NULL)::text, ',' ORDER BY key)", ""); got != "1  111 Ann true,2 x 333 Bob true" {
		t.Errorf("copied: %q", got)
	}
	if got, want := loadtest.Text(t, db.Pool, "encode(hash, 'hex')", "key = '2'"), sha(`{"name": "Bob"}`); got != want {
		t.Errorf("hash %s, want %s", got, want)
	}
}

func sha(payload string) string {
	h := sha256.Sum256([]byte(payload))
	return hex.EncodeToString(h[:])
}
