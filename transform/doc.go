// Package transform runs the SQL models under sql/ (staging, intermediate, marts) as one ordered DAG in a
// single transaction, runs every declared check and singular test, and commits only if all pass, so a
// bad night leaves yesterday's marts in place.
//
// # Models
//
// A model is a file sql/<layer>/<area>/<name>.sql holding exactly one SELECT
// (or WITH ... SELECT). Its name is the relation it builds: the layer gives
// the schema (staging -> stg, intermediate -> int, marts -> mart) and the
// file name the relation, so sql/staging/sits/sits_student.sql builds
// stg.sits_student. The runner, not the file, creates the relation; a file
// never contains CREATE, INSERT or a second statement. Leading comment lines
// form the header; lines of the form "-- key: value" in it are directives:
//
//	-- depends: stg.sits_student, stg.sits_student_enrl
//	-- checks: unique(student_code), not_null(student_code, username)
//	-- checks: accepted_values(kind, 'missing', 'extra'), relationships(student_code, stg.sits_student.student_code)
//	-- checks: row_count_min(1)
//	-- materialized: table
//	-- indexes: (student_code), (instance, course_id)
//	-- description: one line for the relation's comment (may repeat)
//
// depends lists the models this one reads. Every stg./int./mart. relation
// the SQL reads must be listed (the loader finds them and refuses a model
// that reads an undeclared or unknown model), a dependency must exist, and a
// layer reads only its own and earlier layers. Sources outside the model
// schemas (the raw store, ctl.*, ref.*) are read freely. Cycles are refused
// with the cycle named. Models run in a deterministic order: dependencies
// first, ties broken by layer, then name.
//
// materialized is table (the default) or view. A table is built as follows:
// if it does not exist, CREATE TABLE AS; if it exists with exactly the
// model's columns (names, types, order), it is truncated and refilled, so
// views and grants others put on it survive; if its columns changed, it is
// dropped and created again (this fails, naming them, if other objects
// depend on it). Relations the runner built carry the comment "mim model
// ..."; a relation of the same name that the runner did not build (one a
// migration created) is refilled only if its columns match, and never
// dropped. After filling, the declared indexes (named <table>__<columns>)
// are created and the table is ANALYZEd, because autovacuum cannot see rows
// inside an uncommitted transaction. A view is CREATE OR REPLACE VIEW,
// dropped and created again only when its columns changed.
//
// # Checks
//
// A check is a query whose rows are failures:
//
//	unique(a, b)                 no two rows share (a, b); NULLs count as equal
//	not_null(a, b)               no row has a NULL in a or b
//	accepted_values(c, 'x', 'y') every non-NULL c, as text, is 'x' or 'y'
//	relationships(c, s.m.col)    every non-NULL c exists in column col of model s.m
//	row_count_min(n)             the model has at least n rows
//
// Singular tests are files sql/tests/<name>.sql holding one SELECT whose
// rows are failures; their header may carry description and depends.
//
// # A run
//
// Run opens one transaction, sets statement_timeout and lock_timeout for it
// (warehouse.statement_timeout and warehouse.lock_timeout), builds the
// selected models in order, runs the Go hooks between layers (course
// mappings derived from the Moodle courses staging just built), then runs
// every check of every model and every singular test against the result,
// each in its own savepoint. It commits only if every one returned no rows;
// otherwise it rolls back, so every model keeps its previous contents, and
// returns a *CheckError naming each failed check with up to N sample rows.
// A model that cannot be built is a *ModelError with its file and line.
// Under a ledger run each model, hook and the checks are a step of the run
// ledger, of stage "transform" (entity = model name); a step is finished
// only when the transaction's fate is known, so a rolled-back model is not
// "succeeded".
//
// # Selecting models
//
// --select takes model names or globs (stg.sits_*), with dbt's "+": MODEL+
// adds every descendant, +MODEL every ancestor. Only the selected models
// are rebuilt, still in one transaction; the others keep what their last
// build left, which is why a selected model whose downstream models are not
// selected is reported (Result.Stale): they may now disagree with it until
// the next full run. A selected model whose unselected dependency has never
// been built is refused before anything runs. Checks and tests always run
// over the whole warehouse, selected or not, because the whole is what is
// committed; only those that need a model never built are skipped (and
// listed).
//
// # Evaluating a scope
//
// Evaluate builds one model and the models between it and some replaced
// sources as temporary tables in the caller's transaction, reading the
// replaced sources (ctl.course_mapping) from relations the caller filled and
// every other model as last built: a course staff's change is previewed by
// the night's own SQL over that course's mappings alone, in milliseconds,
// where a whole transform takes minutes.
package transform
