package transform

// SetAfterCommit makes Run call f right after its COMMIT succeeds (tests).
func SetAfterCommit(o *Options, f func()) { o.afterCommit = f }
