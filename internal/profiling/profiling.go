// Package profiling writes Go profiles of a mim command when MIM_PROFILE_DIR
// asks for them: a CPU profile of the whole command, and a heap profile
// taken when the live heap was at its highest. `mim bench --profile DIR`
// sets the variable for the commands it runs; it is for finding out where
// time and memory go.
package profiling

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/metrics"
	"runtime/pprof"
	"time"
)

// DirEnv names the directory a command writes its profiles to:
// <command>-<pid>.cpu.pprof and <command>-<pid>.heap.pprof.
const DirEnv = "MIM_PROFILE_DIR"

// heapEvery is how often the live heap is sampled.
const heapEvery = 50 * time.Millisecond

// Start starts the profiles DirEnv asks for and returns the function that
// ends them; it does nothing when the variable is unset. A profile that
// cannot be written is said on stderr: the command goes on.
func Start(command string) (stop func()) {
	dir := os.Getenv(DirEnv)
	if dir == "" {
		return func() {}
	}
	base := filepath.Join(dir, fmt.Sprintf("%s-%d", command, os.Getpid()))
	cpu, err := startCPU(base + ".cpu.pprof")
	if err != nil {
		fmt.Fprintf(os.Stderr, "mim: %s: %v\n", DirEnv, err)
		return func() {}
	}
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		watchHeap(base+".heap.pprof", done)
	}()
	return func() {
		close(done)
		<-stopped
		pprof.StopCPUProfile()
		cpu.Close()
	}
}

// startCPU starts the CPU profile into a new file.
func startCPU(path string) (*os.File, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// watchHeap samples the live heap until done closes, writing a heap
// profile to path at each new peak a tenth above the last one written.
func watchHeap(path string, done <-chan struct{}) {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	var peak uint64
	t := time.NewTicker(heapEvery)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		metrics.Read(sample)
		if v := sample[0].Value.Uint64(); v > peak+peak/10 {
			peak = v
			writeHeap(path)
		}
	}
}

// writeHeap writes the heap profile as it is now.
func writeHeap(path string) {
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	_ = pprof.Lookup("heap").WriteTo(f, 0)
}
