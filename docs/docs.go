// Package docs carries the documents the binary itself reads: the source
// contract (sources.md), which `mim check` compares each SITS, CMIS and
// PowerCampus relation with.
package docs

import _ "embed"

// SourceContract is sources.md: per view or table, its columns, type
// families and nullability.
//
//go:embed sources.md
var SourceContract []byte
