package pipeline

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mimwarehouse/mim/internal/observe"
)

// Metrics are observe's collectors plus the pipeline's own count of task
// outcomes, mim_stage_runs_total{stage,outcome}, which the alert on
// extraction errors reads (a failed or partial extract of any source).
type Metrics struct {
	*observe.Metrics
	StageRuns *prometheus.CounterVec
}

// StageRunsName is the name of the task-outcome counter.
const StageRunsName = "mim_stage_runs_total"

// NewMetrics adds the pipeline's collectors to m's registry; calling it
// twice on one registry shares the collectors.
func NewMetrics(m *observe.Metrics) *Metrics {
	runs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: StageRunsName,
		Help: "Tasks of MIM runs by stage and outcome (succeeded, partial, failed, refused, skipped).",
	}, []string{"stage", "outcome"})
	if err := m.Registry.Register(runs); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			panic("pipeline: registering " + StageRunsName + ": " + err.Error()) // a programming error
		}
		runs = are.ExistingCollector.(*prometheus.CounterVec)
	}
	return &Metrics{Metrics: m, StageRuns: runs}
}

// TaskDone counts one task's outcome.
func (m *Metrics) TaskDone(stage, outcome string) {
	m.StageRuns.WithLabelValues(stage, outcome).Inc()
}
