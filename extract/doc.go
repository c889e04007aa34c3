// Package extract defines the contract between sources (SITS, CMIS, Moodle sites) and the raw loader:
// a source streams Records entity by entity and says which scopes it read completely, so that only
// keys missing from a completely read scope are ever marked deleted.
package extract
