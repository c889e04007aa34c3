// Package wire is where the configuration becomes each stage's options. The
// stage packages (export/..., extract/..., internal/mapping, internal/notify,
// ...) declare the small options they need and never import
// internal/config; the composition roots (internal/app, internal/night)
// load a *config.Config and hand each stage what wire derives from it. A
// function here copies and converts; it decides nothing and dials nothing.
package wire
