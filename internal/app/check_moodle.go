package app

import (
	"context"
	"time"

	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/observe"
	"github.com/mimwarehouse/mim/moodle"
)

// MoodleClient builds the web-service client for a configured site with
// its rate, concurrency, form-variable budget, timeout and retries, logging
// to e.Logger. Every command that talks to Moodle builds its clients here,
// so all treat a site alike; opts are applied last (e.g. an Observer).
func MoodleClient(e *Env, site *config.MoodleSite, opts ...moodle.Option) (*moodle.Client, error) {
	base := []moodle.Option{
		moodle.WithRate(site.RatePerSecond),
		moodle.WithConcurrency(site.Concurrency),
		moodle.WithMaxInputVars(site.MaxInputVars),
		moodle.WithTimeout(site.Timeout),
		moodle.WithRetries(site.Retries),
	}
	if e.Logger != nil {
		base = append(base, moodle.WithLogger(e.Logger))
	}
	base = append(base, moodle.WithObserver(requestObservers(e)))
	return moodle.New(site.Name, site.URL, site.Token.Reveal(), append(base, opts...)...)
}

// requestObservers is where a client's calls are counted: the tally the
// ledger gets at the end of a run, and the live metrics when there are.
func requestObservers(e *Env) moodle.Observer {
	if e.Requests == nil {
		e.Requests = observe.NewTally()
	}
	if e.Metrics == nil {
		return e.Requests
	}
	return observerPair{e.Requests, e.Metrics}
}

type observerPair [2]moodle.Observer

func (p observerPair) RequestObserved(site, function, outcome string, d time.Duration) {
	p[0].RequestObserved(site, function, outcome, d)
	p[1].RequestObserved(site, function, outcome, d)
}

// saveRequests records the Moodle calls made since the last save under run.
// A failure is logged: the run's own work stands.
func saveRequests(ctx context.Context, e *Env, q observe.Execer, runID int64) {
	if e.Requests == nil {
		return
	}
	if err := observe.SaveRequests(context.WithoutCancel(ctx), q, runID, e.Requests.Drain()); err != nil && e.Logger != nil {
		e.Logger.Warn("recording the run's Moodle calls", "run_id", runID, "error", err)
	}
}
