package load

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// mergeOutcome is what one commit's transaction did.
type mergeOutcome struct {
	path         string // "insert": the entity had no rows, records were copied straight in; "merge" otherwise
	applied      int64  // records of complete scopes (after removing duplicates)
	inserted     int64
	changed      int64 // payload changed, or the key came back after deletion
	deleted      int64
	rescoped     int64 // same payload, read under another scope
	keptBad      int64 // live keys of complete scopes not deleted because their row could not be read
	suspect      *suspicion
	duplicates   int64 // extra writes of a key already written this run
	conflicts    int64 // keys written more than once with different payloads
	conflictKeys []string
	// laps are the phases' durations, kept in the step's detail.
	laps []lap
	last time.Time
}

type lap struct {
	name string
	d    time.Duration
}

// lap records the time since the previous lap under name.
func (o *mergeOutcome) lap(name string) {
	now := time.Now()
	o.laps = append(o.laps, lap{name, now.Sub(o.last)})
	o.last = now
}

// recIter walks a writer's spools in write order. next reads one record's
// key, scope and hash; payload reads its payload, and next skips it when it
// was not read.
type recIter struct {
	kr, pr      *spoolReader
	seq         int64 // of the current record; -1 before the first
	key, scope  []byte
	hash        []byte
	plen        int
	payloadRead bool
	scratch     []byte
}

func (w *writer) iter() *recIter {
	return &recIter{kr: newSpoolReader(&w.keys), pr: newSpoolReader(&w.payloads), seq: -1, payloadRead: true}
}

func (it *recIter) next() (bool, error) {
	if !it.payloadRead {
		it.pr.skip(it.plen)
	}
	if it.kr.done() {
		return false, nil
	}
	it.scratch = it.scratch[:0]
	kl, err := it.kr.uvarint()
	if err != nil {
		return false, err
	}
	b, err := it.kr.next(int(kl))
	if err != nil {
		return false, err
	}
	it.scratch = append(it.scratch, b...)
	sl, err := it.kr.uvarint()
	if err != nil {
		return false, err
	}
	if b, err = it.kr.next(int(sl)); err != nil {
		return false, err
	}
	it.scratch = append(it.scratch, b...)
	if b, err = it.kr.next(32); err != nil {
		return false, err
	}
	it.scratch = append(it.scratch, b...)
	pl, err := it.kr.uvarint()
	if err != nil {
		return false, err
	}
	k, s := int(kl), int(sl)
	it.key, it.scope, it.hash = it.scratch[:k], it.scratch[k:k+s], it.scratch[k+s:k+s+32]
	it.plen, it.payloadRead = int(pl), false
	it.seq++
	return true, nil
}

func (it *recIter) payload() ([]byte, error) {
	it.payloadRead = true
	return it.pr.next(it.plen)
}

// bitset marks record sequence numbers.
type bitset []uint64

func newBitset(n int64) bitset             { return make(bitset, (n+63)/64) }
func (b bitset) set(i int64)               { b[i/64] |= 1 << (i % 64) }
func (b bitset) has(i int64) bool          { return b[i/64]&(1<<(i%64)) != 0 }
func (p *scopePlan) applies(s []byte) bool { return p.apply[string(s)] }

func (w *writer) merge(ctx context.Context, p scopePlan) (mergeOutcome, error) {
	out := mergeOutcome{path: "merge", last: time.Now()}
	if err := w.keys.flush(); err != nil {
		return out, err
	}
	if err := w.payloads.flush(); err != nil {
		return out, err
	}
	tx, err := w.l.pool.Begin(ctx)
	if err != nil {
		return out, fmt.Errorf("beginning the transaction: %w", err)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = tx.Rollback(rctx) // a no-op after Commit
	}()
	// Two writers of one entity (two processes, or a retry) take turns.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, "mim.load:"+w.id.String()); err != nil {
		return out, fmt.Errorf("waiting for the entity's lock: %w", err)
	}
	// The comparison hashes a million keys: let it do so in memory.
	if _, err := tx.Exec(ctx, `SELECT set_config('work_mem', $1, true)`, w.l.workMem); err != nil {
		return out, fmt.Errorf("setting work_mem: %w", err)
	}
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM raw.record WHERE source = $1 AND instance = $2 AND entity = $3)`,
		w.id.Source, w.id.Instance, w.id.Entity).Scan(&exists); err != nil {
		return out, fmt.Errorf("looking for existing rows: %w", err)
	}
	out.lap("begin")
	if !exists && !w.possibleDup {
		// Nothing to compare with: every record is new, copy them straight in.
		out.path = "insert"
		n, err := w.copyRecords(ctx, tx, func(it *recIter) bool { return p.applies(it.scope) })
		if err != nil {
			return out, fmt.Errorf("copying records into raw.record: %w", err)
		}
		out.applied, out.inserted = n, n
		out.lap("copy")
	} else if err := w.mergeExisting(ctx, tx, &p, &out); err != nil {
		return out, err
	}
	if err := w.recordScopes(ctx, tx, &p); err != nil {
		return out, err
	}
	out.lap("scopes")
	if err := tx.Commit(ctx); err != nil {
		return out, fmt.Errorf("committing: %w", err)
	}
	out.lap("commit")
	return out, nil
}

// copyRecords copies the records want selects into raw.record as new rows.
func (w *writer) copyRecords(ctx context.Context, tx pgx.Tx, want func(*recIter) bool) (int64, error) {
	it := w.iter()
	run := w.l.run.ID
	return copyFrom(ctx, tx, `COPY raw.record (source, instance, entity, key, scope, payload, hash, first_run, changed_run, seen_run)
		FROM STDIN (FORMAT binary)`, func(t *copyTuples) (bool, error) {
		for {
			ok, err := it.next()
			if !ok || err != nil {
				return false, err
			}
			if !want(it) {
				continue
			}
			payload, err := it.payload()
			if err != nil {
				return false, err
			}
			t.begin(10)
			t.text(w.id.Source)
			t.text(w.id.Instance)
			t.text(w.id.Entity)
			t.bytes(it.key)
			t.bytes(it.scope)
			t.jsonb(payload)
			t.bytes(it.hash)
			t.int8(run)
			t.int8(run)
			t.int8(run)
			return true, nil
		}
	})
}

// mergeExisting compares the records with raw.record by key and hash first,
// then sends the payloads of new and changed records only.
func (w *writer) mergeExisting(ctx context.Context, tx pgx.Tx, p *scopePlan, out *mergeOutcome) error {
	src, inst, ent, run := w.id.Source, w.id.Instance, w.id.Entity, w.l.run.ID
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE mim_load_keys (seq bigint NOT NULL, key text NOT NULL,
		scope text NOT NULL, hash bytea NOT NULL, apply boolean NOT NULL) ON COMMIT DROP`); err != nil {
		return fmt.Errorf("creating the keys table: %w", err)
	}
	it := w.iter()
	var applied int64
	if _, err := copyFrom(ctx, tx, `COPY mim_load_keys (seq, key, scope, hash, apply) FROM STDIN (FORMAT binary)`,
		func(t *copyTuples) (bool, error) {
			ok, err := it.next()
			if !ok || err != nil {
				return false, err
			}
			apply := p.applies(it.scope)
			if apply {
				applied++
			}
			t.begin(5)
			t.int8(it.seq)
			t.bytes(it.key)
			t.bytes(it.scope)
			t.bytes(it.hash)
			t.boolean(apply)
			return true, nil
		}); err != nil {
		return fmt.Errorf("copying keys and hashes: %w", err)
	}
	out.lap("copy_keys")
	if w.possibleDup {
		removed, err := w.dedupe(ctx, tx, out)
		if err != nil {
			return err
		}
		applied -= removed
	}
	out.applied = applied

	// One pass over the keys and the entity's rows says everything: which
	// records need their payload sent (new, changed, or back after
	// deletion: 'n', 'c'), which only moved scope ('s'), and which rows
	// of completely read scopes were not written at all ('d'). It is a
	// hash join whatever the statistics say (a nested loop over a million
	// keys would take hours).
	if _, err := tx.Exec(ctx, `SELECT set_config('enable_nestloop', 'off', true)`); err != nil {
		return fmt.Errorf("comparing hashes: %w", err)
	}
	rows, err := tx.Query(ctx, `
		SELECT k.seq,
		       CASE WHEN k.key IS NULL THEN 'd'
		            WHEN r.key IS NULL THEN 'n'
		            WHEN r.hash <> k.hash OR r.deleted_run IS NOT NULL THEN 'c'
		            ELSE 's' END AS kind,
		       coalesce(k.key, r.key), k.scope
		FROM mim_load_keys k
		FULL JOIN (SELECT key, scope, hash, deleted_run FROM raw.record
		           WHERE source = $1 AND instance = $2 AND entity = $3) r ON r.key = k.key
		WHERE CASE WHEN k.key IS NULL THEN r.deleted_run IS NULL AND r.scope = ANY($4::text[]) AND NOT r.key = ANY($5::text[])
		           ELSE k.apply AND (r.key IS NULL OR r.hash <> k.hash OR r.deleted_run IS NOT NULL OR r.scope <> k.scope) END`,
		src, inst, ent, p.complete, w.badKeyList())
	if err != nil {
		return fmt.Errorf("comparing hashes: %w", err)
	}
	newSet, chgSet := newBitset(w.n), newBitset(w.n)
	var rescopeKeys, rescopeScopes, deleteKeys []string
	for rows.Next() {
		var seq *int64
		var kind, key string
		var scope *string
		if err := rows.Scan(&seq, &kind, &key, &scope); err != nil {
			rows.Close()
			return fmt.Errorf("comparing hashes: %w", err)
		}
		switch kind {
		case "n":
			newSet.set(*seq)
			out.inserted++
		case "c":
			chgSet.set(*seq)
			out.changed++
		case "s":
			rescopeKeys, rescopeScopes = append(rescopeKeys, key), append(rescopeScopes, *scope)
		case "d":
			deleteKeys = append(deleteKeys, key)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("comparing hashes: %w", err)
	}
	// What follows is driven by the (usually few) keys found above: index
	// lookups are right again.
	if _, err := tx.Exec(ctx, `SELECT set_config('enable_nestloop', 'on', true)`); err != nil {
		return fmt.Errorf("comparing hashes: %w", err)
	}
	out.lap("compare")
	if len(w.badKeys) > 0 {
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM raw.record WHERE source = $1 AND instance = $2 AND entity = $3
			AND deleted_run IS NULL AND key = ANY($4::text[]) AND scope = ANY($5::text[])
			AND key NOT IN (SELECT key FROM mim_load_keys)`, src, inst, ent, w.badKeyList(), p.complete).Scan(&out.keptBad); err != nil {
			return fmt.Errorf("counting the keys kept for their unreadable rows: %w", err)
		}
	}
	// Completeness is earned: judge the read before it writes anything.
	if err := w.judge(ctx, tx, p, out, int64(len(deleteKeys))); err != nil {
		return err
	}

	if out.inserted > 0 {
		n, err := w.copyRecords(ctx, tx, func(it *recIter) bool { return newSet.has(it.seq) })
		if err != nil {
			return fmt.Errorf("copying new records into raw.record: %w", err)
		}
		if n != out.inserted {
			return fmt.Errorf("copying new records into raw.record: copied %d, expected %d", n, out.inserted)
		}
		out.lap("insert")
	}
	if out.changed > 0 {
		if err := w.applyChanged(ctx, tx, chgSet, out); err != nil {
			return err
		}
	}
	if len(rescopeKeys) > 0 {
		tag, err := tx.Exec(ctx, `UPDATE raw.record r SET scope = u.scope, seen_run = $4
			FROM unnest($5::text[], $6::text[]) AS u(key, scope)
			WHERE r.source = $1 AND r.instance = $2 AND r.entity = $3 AND r.key = u.key`,
			src, inst, ent, run, rescopeKeys, rescopeScopes)
		if err != nil {
			return fmt.Errorf("moving records to their new scope: %w", err)
		}
		out.rescoped = tag.RowsAffected()
	}
	if len(deleteKeys) > 0 {
		// Only keys of completely read scopes that were not written at all
		// (under any scope) are deleted.
		tag, err := tx.Exec(ctx, `UPDATE raw.record SET deleted_run = $4
			WHERE source = $1 AND instance = $2 AND entity = $3 AND key = ANY($5::text[]) AND deleted_run IS NULL`,
			src, inst, ent, run, deleteKeys)
		if err != nil {
			return fmt.Errorf("marking deleted records: %w", err)
		}
		if out.deleted = tag.RowsAffected(); out.deleted != int64(len(deleteKeys)) {
			return fmt.Errorf("marking deleted records: marked %d, expected %d", out.deleted, len(deleteKeys))
		}
		out.lap("delete")
	}
	return nil
}

// applyChanged sends the changed records' payloads, moves the versions they
// replace to raw.record_history, and updates raw.record.
func (w *writer) applyChanged(ctx context.Context, tx pgx.Tx, chgSet bitset, out *mergeOutcome) error {
	want := out.changed
	src, inst, ent, run := w.id.Source, w.id.Instance, w.id.Entity, w.l.run.ID
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE mim_load_changed (key text NOT NULL, scope text NOT NULL,
		hash bytea NOT NULL, payload jsonb NOT NULL) ON COMMIT DROP`); err != nil {
		return fmt.Errorf("creating the changed-records table: %w", err)
	}
	it := w.iter()
	n, err := copyFrom(ctx, tx, `COPY mim_load_changed (key, scope, hash, payload) FROM STDIN (FORMAT binary)`,
		func(t *copyTuples) (bool, error) {
			for {
				ok, err := it.next()
				if !ok || err != nil {
					return false, err
				}
				if !chgSet.has(it.seq) {
					continue
				}
				payload, err := it.payload()
				if err != nil {
					return false, err
				}
				t.begin(4)
				t.bytes(it.key)
				t.bytes(it.scope)
				t.bytes(it.hash)
				t.jsonb(payload)
				return true, nil
			}
		})
	if err != nil {
		return fmt.Errorf("copying changed records: %w", err)
	}
	if n != want {
		return fmt.Errorf("copying changed records: copied %d, expected %d", n, want)
	}
	// A few changed keys are looked up by index; past a twentieth of the
	// entity, one hashed pass over its rows is cheaper than that many
	// random lookups. Decided here because raw.record's statistics may be
	// stale or missing (autovacuum off) and the planner would guess.
	nestloop := "on"
	if want*20 > w.n {
		nestloop = "off"
	}
	if _, err := tx.Exec(ctx, `SELECT set_config('enable_nestloop', $1, true)`, nestloop); err != nil {
		return fmt.Errorf("choosing the join for changed records: %w", err)
	}
	out.lap("copy_changed")
	// A key changed twice in one run (an entity committed twice) keeps in
	// history the version that was current before the run. (One statement
	// doing both, UPDATE ... FROM the old row RETURNING it into history,
	// was measured slower than these two.)
	if _, err := tx.Exec(ctx, `INSERT INTO raw.record_history
			(source, instance, entity, key, scope, payload, hash, valid_from_run, valid_to_run, deleted_run)
		SELECT r.source, r.instance, r.entity, r.key, r.scope, r.payload, r.hash, r.changed_run, $4, r.deleted_run
		FROM raw.record r JOIN mim_load_changed c ON r.key = c.key
		WHERE r.source = $1 AND r.instance = $2 AND r.entity = $3
		ON CONFLICT DO NOTHING`, src, inst, ent, run); err != nil {
		return fmt.Errorf("keeping replaced versions in raw.record_history: %w", err)
	}
	out.lap("history")
	tag, err := tx.Exec(ctx, `UPDATE raw.record r
		SET scope = c.scope, payload = c.payload, hash = c.hash, changed_run = $4, seen_run = $4, deleted_run = NULL
		FROM mim_load_changed c
		WHERE r.source = $1 AND r.instance = $2 AND r.entity = $3 AND r.key = c.key`, src, inst, ent, run)
	if err != nil {
		return fmt.Errorf("updating changed records: %w", err)
	}
	if tag.RowsAffected() != want {
		return fmt.Errorf("updating changed records: updated %d, expected %d", tag.RowsAffected(), want)
	}
	out.lap("update")
	return nil
}

// dedupe keeps the last write of every key written more than once and
// returns how many removed writes belonged to complete scopes.
func (w *writer) dedupe(ctx context.Context, tx pgx.Tx, out *mergeOutcome) (int64, error) {
	var removedApplied int64
	err := tx.QueryRow(ctx, `
		WITH d AS (
			SELECT key, max(seq) AS keep, count(*) AS n, count(DISTINCT hash) AS hashes
			FROM mim_load_keys GROUP BY key HAVING count(*) > 1
		), del AS (
			DELETE FROM mim_load_keys k USING d WHERE k.key = d.key AND k.seq <> d.keep RETURNING k.apply
		)
		SELECT (SELECT count(*) FROM del WHERE apply),
		       (SELECT coalesce(sum(n - 1), 0)::bigint FROM d),
		       (SELECT count(*) FROM d WHERE hashes > 1),
		       (SELECT coalesce(array_agg(key ORDER BY key), '{}') FROM
		           (SELECT key FROM d WHERE hashes > 1 ORDER BY key LIMIT $1) x)`, maxDetailRows).
		Scan(&removedApplied, &out.duplicates, &out.conflicts, &out.conflictKeys)
	if err != nil {
		return 0, fmt.Errorf("removing keys written more than once: %w", err)
	}
	return removedApplied, nil
}

// recordScopes notes in raw.scope_read which scopes were read completely
// and which failed in this run.
func (w *writer) recordScopes(ctx context.Context, tx pgx.Tx, p *scopePlan) error {
	n := len(p.complete) + len(p.failed)
	if n == 0 {
		return nil
	}
	scopes, ok, errs := make([]string, 0, n), make([]bool, 0, n), make([]*string, 0, n)
	for _, s := range p.complete {
		scopes, ok, errs = append(scopes, s), append(ok, true), append(errs, nil)
	}
	for _, f := range p.failed {
		msg := truncate(f.Error, 2000)
		scopes, ok, errs = append(scopes, f.Scope), append(ok, false), append(errs, &msg)
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO raw.scope_read AS s (source, instance, entity, scope, complete_run, failed_run, error)
		SELECT $1, $2, $3, u.scope, CASE WHEN u.ok THEN $4::bigint END, CASE WHEN u.ok THEN NULL ELSE $4::bigint END, u.err
		FROM unnest($5::text[], $6::boolean[], $7::text[]) AS u(scope, ok, err)
		ON CONFLICT (source, instance, entity, scope) DO UPDATE SET
			complete_run = coalesce(EXCLUDED.complete_run, s.complete_run),
			failed_run   = coalesce(EXCLUDED.failed_run, s.failed_run),
			error        = CASE WHEN EXCLUDED.failed_run IS NULL THEN s.error ELSE EXCLUDED.error END`,
		w.id.Source, w.id.Instance, w.id.Entity, w.l.run.ID, scopes, ok, errs)
	if err != nil {
		return fmt.Errorf("recording which scopes were read: %w", err)
	}
	return nil
}

// badKeyList is the keys of the rows that could not be read, for SQL.
func (w *writer) badKeyList() []string {
	out := make([]string, 0, len(w.badKeys))
	for k := range w.badKeys {
		out = append(out, k)
	}
	return out
}
