package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// childRun is one mim command the bench ran and timed.
type childRun struct {
	Args    []string
	Wall    time.Duration
	CPU     time.Duration // user + system time of the child
	PeakRSS int64         // bytes; 0 where the system does not say
	Exit    int
	Output  string
	Started time.Time
	// Busy is the share of the machine's CPU time in use while the child
	// ran (everything: the child, PostgreSQL, the simulated sites), and
	// Sites the bench process's own CPU time then (the simulated sites).
	Busy  float64
	Sites time.Duration
	// Load is the machine's one-minute load average when the child
	// started and when it ended (uptime's first figure).
	Load [2]float64
}

// loadNote says how loaded the machine was around a child.
func (r *childRun) loadNote() string {
	return fmt.Sprintf("load %.1f→%.1f", r.Load[0], r.Load[1])
}

// childError is a child that could not run or exited with a usage error.
type childError struct {
	args   []string
	exit   int
	err    error
	output string
}

func (e *childError) Error() string {
	return fmt.Sprintf("mim %s: %v\n%s", strings.Join(e.args, " "), e.err, tail(e.output, 20))
}

func (e *childError) Unwrap() error { return e.err }

// mim runs `mim --config <bench config> ARGS...` and waits for it. Exit
// codes 1 (failure) and 3 (refused) are results, reported with the
// figures; anything else that is not 0 is an error.
func (b *bench) mim(ctx context.Context, args ...string) (*childRun, error) {
	full := append([]string{"--config", b.configs[b.kind]}, args...)
	cmd := b.o.Command(ctx, full...)
	cmd.Env = b.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	busy0, total0 := cpuTimes()
	self0 := selfCPU()
	r := &childRun{Args: args, Started: time.Now(), Load: [2]float64{loadAverage(), 0}}
	err := cmd.Start()
	if err == nil {
		// getrusage's ru_maxrss of a child is no use here: Linux starts it
		// from the parent's peak when the child was cloned sharing its
		// memory, as Go does. The child's own VmHWM is sampled instead.
		done := make(chan struct{})
		peak := make(chan int64, 1)
		go func() { peak <- samplePeakRSS(cmd.Process.Pid, done) }()
		err = cmd.Wait()
		close(done)
		r.PeakRSS = <-peak
	}
	r.Wall = time.Since(r.Started)
	r.Load[1] = loadAverage()
	r.Sites = selfCPU() - self0
	if busy1, total1 := cpuTimes(); total1 > total0 {
		r.Busy = float64(busy1-busy0) / float64(total1-total0)
	}
	r.Output = out.String()
	if st := cmd.ProcessState; st != nil {
		r.Exit = st.ExitCode()
		r.CPU = st.UserTime() + st.SystemTime()
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && (r.Exit == 1 || r.Exit == 3):
	default:
		return r, &childError{args: args, exit: r.Exit, err: err, output: r.Output}
	}
	return r, nil
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
