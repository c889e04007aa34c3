// Package sqlfiles embeds MIM's SQL: the goose migrations that own every table,
// and the transform models (staging, intermediate, marts) and singular tests
// that own the rows. Keeping SQL in files beside each other, not in Go strings,
// lets the integration team read and review it as SQL.
package sqlfiles

import "embed"

// Migrations holds sql/migrations/*.sql (goose format).
//
//go:embed migrations/*.sql
var Migrations embed.FS

// Models holds the transform models and singular tests: staging/, intermediate/,
// marts/ and tests/ (package transform reads *.sql there; README files explain
// each layer). See the transform package for the model format.
//
//go:embed staging intermediate marts tests
var Models embed.FS
