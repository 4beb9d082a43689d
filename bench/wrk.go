package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// wrkClosedLoop runs wrk (one thread: the servers need the other core
// more than wrk does) against w, and reads its summary.
func wrkClosedLoop(ctx context.Context, w workload, conns int, warmup, dur time.Duration, win window) (*loadResult, error) {
	run := func(d time.Duration) ([]byte, error) {
		secs := max(1, int(d.Round(time.Second)/time.Second))
		cmd := exec.CommandContext(ctx, "wrk", "-t1", fmt.Sprintf("-c%d", conns), fmt.Sprintf("-d%ds", secs),
			"--latency", "--timeout", "30s", "-H", "Authorization: "+w.auth, w.url)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("wrk: %w: %s", err, stderr.String())
		}
		return out, nil
	}
	if warmup > 0 {
		if _, err := run(warmup); err != nil {
			return nil, err
		}
	}
	if win != nil {
		win.open()
	}
	out, err := run(dur)
	if win != nil {
		win.close()
	}
	if err != nil {
		return nil, err
	}
	return parseWrk(string(out))
}

var (
	wrkTotal   = regexp.MustCompile(`(\d+) requests in ([\d.]+)(us|ms|s|m)`)
	wrkNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkSockErr = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkPct     = regexp.MustCompile(`(?m)^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s|m)\s*$`)
)

// parseWrk reads wrk --latency's summary.
func parseWrk(out string) (*loadResult, error) {
	r := &loadResult{tool: "wrk"}
	m := wrkTotal.FindStringSubmatch(out)
	if m == nil {
		return nil, fmt.Errorf("wrk: no request count in its output:\n%s", out)
	}
	r.requests, _ = strconv.Atoi(m[1])
	var err error
	if r.elapsed, err = wrkDuration(m[2], m[3]); err != nil {
		return nil, err
	}
	if m := wrkNon2xx.FindStringSubmatch(out); m != nil {
		n, _ := strconv.Atoi(m[1])
		r.errors += n
		r.requests -= n
		r.firstErr = "non-2xx answers"
	}
	if m := wrkSockErr.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.Atoi(s)
			r.errors += n
		}
		if r.firstErr == "" && r.errors > 0 {
			r.firstErr = strings.TrimSpace(m[0])
		}
	}
	found := 0
	for _, m := range wrkPct.FindAllStringSubmatch(out, -1) {
		d, err := wrkDuration(m[2], m[3])
		if err != nil {
			return nil, err
		}
		if m[1] == "50" {
			r.p50 = d
		} else {
			r.p99 = d
		}
		found++
	}
	if found != 2 {
		return nil, fmt.Errorf("wrk: no latency distribution in its output (run with --latency):\n%s", out)
	}
	return r, nil
}

func wrkDuration(num, unit string) (time.Duration, error) {
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("wrk: duration %s%s: %w", num, unit, err)
	}
	scale := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "m": time.Minute}[unit]
	return time.Duration(f * float64(scale)), nil
}
