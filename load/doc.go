// Package load lands a source's records in raw.record: COPY into a temporary table, one merge per
// (source, instance, entity), content hashes so an unchanged night rewrites nothing, and deletions only
// inside scopes the source read completely.
//
// A Loader implements extract.Sink. Each entity's writer canonicalises every payload (see Canonical)
// and hashes it with SHA-256 as it is written, and spools key, scope, hash and payload to memory and
// then to an unlinked temporary file, so memory stays flat however large the entity (about 20 bytes
// a record remain in memory, to notice a key written twice). Commit runs one transaction:
//
//   - if the entity has no rows yet, every record of a complete scope is copied straight into
//     raw.record (binary COPY);
//   - otherwise keys and hashes alone are copied into a temporary table and compared with
//     raw.record in one hash join, which finds the new and changed records, the ones that only
//     moved scope, and the live rows of completely read scopes that were not written at all;
//     then only the new and changed payloads are sent: new ones copied into raw.record, changed
//     ones updated after their old version is copied to raw.record_history. An unchanged record
//     is not rewritten at all (its seen_run stays; raw.scope_read says when its scope was last
//     read completely, so the last run that saw it is greatest(seen_run, complete_run));
//   - rows of completely read scopes that were not written get deleted_run; a key that comes back
//     after deletion is a change (the deleted version goes to history);
//   - records of scopes declared failed, or never declared complete, are not applied at all, and
//     that scope's rows stay exactly as they were;
//   - a key written twice keeps its last write; different payloads for one key count as an error.
//
// Every entity gets a ctl.run_step (stage "extract") with its counts, its bad rows and failed scopes
// in the detail, and the commit's phase timings.
package load
