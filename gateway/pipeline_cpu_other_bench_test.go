//go:build !unix

package gateway

import "time"

// processCPU is not measured here: the CPU metric is left out.
func processCPU() time.Duration { return 0 }
