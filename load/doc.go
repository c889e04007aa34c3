// Package load lands a source's records in raw.record: COPY into a temporary table, one merge per
// (source, instance, entity), content hashes so an unchanged night rewrites nothing, and deletions only
// inside scopes the source read completely.
package load
