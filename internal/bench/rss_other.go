//go:build !linux

package bench

import "time"

// Without /proc, peak memory is not reported.

func samplePeakRSS(pid int, done <-chan struct{}) int64 { <-done; return 0 }

func selfPeakRSS() int64 { return 0 }

func cpuTimes() (busy, total uint64) { return 0, 0 }

func selfCPU() time.Duration { return 0 }

func loadAverage() float64 { return 0 }
