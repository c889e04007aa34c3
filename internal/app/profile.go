package app

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/metrics"
	"runtime/pprof"
	"time"
)

// ProfileDirEnv names a directory where a mim command writes Go profiles of
// itself: <command>-<pid>.cpu.pprof, and <command>-<pid>.heap.pprof taken
// when the live heap was at its highest. `mim bench --profile DIR` sets it
// for the commands it runs; it is for finding out where time and memory go.
const ProfileDirEnv = "MIM_PROFILE_DIR"

// startProfiles starts the profiles ProfileDirEnv asks for and returns the
// function that ends them; it does nothing when the variable is unset.
func startProfiles(command string) (stop func()) {
	dir := os.Getenv(ProfileDirEnv)
	if dir == "" {
		return func() {}
	}
	base := filepath.Join(dir, fmt.Sprintf("%s-%d", command, os.Getpid()))
	cpu, err := os.Create(base + ".cpu.pprof")
	if err != nil {
		fmt.Fprintf(os.Stderr, "mim: %s: %v\n", ProfileDirEnv, err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(cpu); err != nil {
		cpu.Close()
		fmt.Fprintf(os.Stderr, "mim: %s: %v\n", ProfileDirEnv, err)
		return func() {}
	}
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		var peak uint64
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			metrics.Read(sample)
			// A new peak a tenth above the last one written is written again.
			if v := sample[0].Value.Uint64(); v > peak+peak/10 {
				peak = v
				if f, err := os.Create(base + ".heap.pprof"); err == nil {
					_ = pprof.Lookup("heap").WriteTo(f, 0)
					f.Close()
				}
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
		pprof.StopCPUProfile()
		cpu.Close()
	}
}
