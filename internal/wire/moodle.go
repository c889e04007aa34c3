package wire

import (
	"log/slog"

	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/moodle"
)

// MoodleOptions are a configured site's client options: its rate,
// concurrency, form-variable budget, timeout and retries, logging to logger
// (when not nil).
func MoodleOptions(site *config.MoodleSite, logger *slog.Logger) []moodle.Option {
	opts := []moodle.Option{
		moodle.WithRate(site.RatePerSecond),
		moodle.WithConcurrency(site.Concurrency),
		moodle.WithMaxInputVars(site.MaxInputVars),
		moodle.WithTimeout(site.Timeout),
		moodle.WithRetries(site.Retries),
	}
	if logger != nil {
		opts = append(opts, moodle.WithLogger(logger))
	}
	return opts
}
