// Package transform runs the SQL models under sql/ (staging, intermediate, marts) as one ordered DAG in a
// single transaction, runs every declared check and singular test, and commits only if all pass, so a
// bad night leaves yesterday's marts in place.
package transform
