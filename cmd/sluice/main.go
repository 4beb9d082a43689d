// Command sluice is the privacy-preserving data release gateway: serve,
// demo, token, audit and policy subcommands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

func main() {
	tuneGC(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		code := 2
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		if err.Error() != "" {
			fmt.Fprintln(os.Stderr, "sluice:", err)
		}
		os.Exit(code)
	}
}

// exitError ends the program with a particular exit code.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

const usage = `usage: sluice <command> [flags]

commands:
  serve --config sluice.yaml            run the gateway
  demo [--addr A] [--dir D] [--policies P] [--redis ADDR [--replicas N]]
                                        run the demo departments and a gateway before them
  token --dir D --sub ID --roles R1,R2 [--dept D] [--district X] [--purpose P] [--ttl 1h]
                                        print a token signed with the demo key in D
  token revoke (--jti ID | --sub S [--issued-before T] [--issuer I]) (--config F | --redis ADDR | --gateway URL --token T) [--expires T]
                                        revoke a token, or a subject's tokens issued before T, on every gateway replica
  audit verify --dir D [--pubkey F]... [--witness F | --redis ADDR --replica R] [--json]
                                        check the trail's hash chain, checkpoints and witness
  audit search --dir D [--subject S] [--dataset SRC/DS] [--action A] [--decision allow|deny|error]
               [--status N] [--request-id ID] [--since T] [--until T] [--limit N] [--newest] [--json]
                                        find records in the trail
  policy test [-v] [--coverage] [--json] [DIR]
                                        run the Rego tests of a policy directory (as opa test)
  policy eval --input FILE [--dir DIR]  print the decision for an input document
  policy explain (--token T | --role R) [--dir D | --config F] [METHOD] PATH
                                        print what a caller would get, without contacting upstreams
  policy risk (--token T | --role R [--dept D] [--district X] [--purpose P] [--sub S]) --dataset SRC/DS
              [--dir D | --config F] [--time T] [--json]
                                        read a caller's whole view of a dataset and report how far it singles people out
  policy lint [--config F] [--subjects FILE] [--time T] [--json] [DIR]
                                        report callers the policies let both read and count a dataset
`

// run is the whole program; main only calls it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &exitError{code: 2, msg: "no command given"}
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], stdout, stderr)
	case "demo":
		return runDemo(ctx, args[1:], stdout, stderr)
	case "token":
		return runToken(args[1:], stdout, stderr)
	case "audit":
		return runAudit(ctx, args[1:], stdout, stderr)
	case "policy":
		return runPolicy(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return &exitError{code: 2, msg: fmt.Sprintf("unknown command %q", args[0])}
}

// tuneGC trades memory for CPU unless the environment (getenv) says
// otherwise: the gateway's live heap is a few MB, so the default GOGC=100
// collects dozens of times a second under load. GOGC=400 cut CPU per
// request by 12-30% in the bench harness; a 1 GiB soft limit keeps the heap
// from running away.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(1 << 30)
	}
}
