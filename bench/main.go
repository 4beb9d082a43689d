// Command bench measures Sluice against its peers on one workload: a
// 20-record page of health/visits for the demo analyst, fetched through
//
//	(a) the department's API directly,
//	(b) a bare httputil.ReverseProxy,
//	(c) nginx proxy_pass,
//	(d) the sidecar pattern: a bare proxy asking an OPA server per request,
//	(e) Sluice with its full pipeline (JWT, policy, transform, durable audit),
//	(f, g, h) Sluice reading the same view by the analyst's own rule, with
//	    records under objection, and naming nobody, each loaded at once
//	    with (e) to say what a grant, the disputed marks and naming the
//	    released people cost,
//
// closed-loop (wrk when installed, else the built-in generator) and at fixed
// rates (the built-in open-loop generator, which measures latency from each
// request's intended send time so a slow server cannot hide its queueing).
// Every server runs in its own process so that its CPU time per request can
// be read from /proc. It also streams a large response through Sluice and
// reports the resident memory that costs, and can watch Sluice's memory
// under a long load.
//
// Run it from the repository: `go run ./bench` (or `make bench`) writes
// bench/RESULTS.md; `go run ./bench --smoke` runs every target for a moment
// and writes nothing unless --out is given. It needs Linux (/proc).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// options are the harness's settings.
type options struct {
	smoke     bool
	out       string
	duration  time.Duration
	warmup    time.Duration
	conns     int
	rounds    int
	rates     []float64 // fixed rates, as fractions of Sluice's closed-loop throughput
	load      string    // auto, wrk or go
	targets   string    // which targets, e.g. "abcdefgh"
	streamMB  int
	soak      time.Duration
	soakEvery time.Duration
	soakRate  float64
	keep      bool
	opaBin    string
	src       string
	cmdline   string
}

func parseOptions(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&o.smoke, "smoke", false, "run every target for a moment (for CI); writes no results file unless --out is given")
	fs.StringVar(&o.out, "out", "", "results file (default bench/RESULTS.md; none in --smoke mode)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time of each run")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load before each run")
	fs.IntVar(&o.conns, "conns", 32, "connections of the closed-loop runs")
	fs.IntVar(&o.rounds, "rounds", 3, "closed-loop rounds over all targets; the median round is reported")
	rates := fs.String("rates", "0.25,0.5", "fixed request rates, as fractions of Sluice's closed-loop throughput")
	fs.StringVar(&o.load, "load", "auto", "closed-loop load generator: auto (wrk when installed), wrk or go")
	fs.StringVar(&o.targets, "targets", "abcdefgh", "targets to run: a upstream, b bare proxy, c nginx, d OPA sidecar, e Sluice (under the demo's grant), f Sluice (the same view by the analyst's own rule), g Sluice (records of the page under objection), h Sluice (visits naming nobody)")
	fs.IntVar(&o.streamMB, "stream-mb", 500, "size of the response streamed through Sluice for the memory check; 0 skips it")
	fs.DurationVar(&o.soak, "soak", 0, "also run Sluice under a fixed load this long and report the slope of its resident memory (e.g. 10m)")
	fs.DurationVar(&o.soakEvery, "soak-every", 2*time.Second, "resident memory sampling interval of --soak")
	fs.Float64Var(&o.soakRate, "soak-rate", 0, "request rate of --soak (default: half of Sluice's closed-loop throughput)")
	fs.BoolVar(&o.keep, "keep", false, "keep the working directory (configs, logs, audit trail)")
	fs.StringVar(&o.src, "src", "", "build cmd/sluice from this source tree (default: the repository the harness runs in)")
	fs.StringVar(&o.opaBin, "opa", "", "OPA binary for the sidecar (default: built from the OPA version pinned in go.mod, cached)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.smoke {
		// Seconds in all: every target once, briefly, and a small stream.
		if !set["duration"] {
			o.duration = time.Second
		}
		if !set["warmup"] {
			o.warmup = 300 * time.Millisecond
		}
		if !set["rounds"] {
			o.rounds = 1
		}
		if !set["rates"] {
			*rates = "0.5"
		}
		if !set["stream-mb"] {
			o.streamMB = 8
		}
		if !set["conns"] {
			o.conns = 8
		}
		if !set["load"] {
			o.load = "go"
		}
	}
	for _, s := range strings.Split(*rates, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		var f float64
		if _, err := fmt.Sscan(s, &f); err != nil || f <= 0 {
			return nil, fmt.Errorf("--rates: %q is not a positive fraction", s)
		}
		o.rates = append(o.rates, f)
	}
	switch {
	case o.duration <= 0 || o.warmup < 0:
		return nil, errors.New("--duration must be positive and --warmup not negative")
	case o.conns < 1 || o.rounds < 1:
		return nil, errors.New("--conns and --rounds must be at least 1")
	case o.load != "auto" && o.load != "wrk" && o.load != "go":
		return nil, fmt.Errorf("--load %q: want auto, wrk or go", o.load)
	case strings.Trim(o.targets, "abcdefgh") != "" || o.targets == "":
		return nil, fmt.Errorf("--targets %q: want letters of abcdefgh", o.targets)
	}
	o.cmdline = "go run ./bench"
	if len(args) > 0 {
		o.cmdline += " " + strings.Join(args, " ")
	}
	return o, nil
}

// run is the whole program; main only calls it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == roleFlag {
		return runRole(ctx, args[1:], stdout)
	}
	o, err := parseOptions(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	return benchmark(ctx, o, stdout, stderr)
}
