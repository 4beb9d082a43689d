// Command sluice is the privacy-preserving data release gateway: serve,
// demo, token, audit, policy, hub and version subcommands.
package main

import (
	"context"
	"errors"
	"flag"
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
	if err == nil {
		return
	}
	if err.Error() != "" {
		fmt.Fprintln(os.Stderr, "sluice:", err)
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(os.Stderr, "Run \"%s --help\" for usage.\n", ue.command())
	}
	os.Exit(exitCode(err))
}

// usageError is a command line the program cannot act on: an unknown
// command or flag, a missing required flag, a value it cannot use. The
// program exits with status 2.
type usageError struct {
	// cmd is the command, "audit search"; "" for the program itself.
	cmd string
	msg string
}

func usagef(cmd, format string, args ...any) error {
	return &usageError{cmd: cmd, msg: fmt.Sprintf(format, args...)}
}

func (e *usageError) Error() string {
	if e.cmd == "" {
		return e.msg
	}
	return e.cmd + ": " + e.msg
}

// command is the command line whose --help has the usage.
func (e *usageError) command() string {
	if e.cmd == "" {
		return "sluice"
	}
	return "sluice " + e.cmd
}

// exitError ends the program with a status of the command's own: the
// verdict of a check (1: audit verify found the trail altered), or 2 when
// a check could not be made (see verdictCommand). An empty msg prints
// nothing: the command has reported on stdout.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// exitCode is the status the program ends with after err: 0 for none, 2
// for a usage error, a command's own, and 1 for any other failure.
func exitCode(err error) int {
	var ue *usageError
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		return 2
	case errors.As(err, &ee):
		return ee.code
	}
	return 1
}

// verdictCommand is for the checks whose exit status 1 is their verdict:
// audit verify (the trail is not intact), policy lint (a caller may both
// read and count a dataset) and policy test (a test failed). Any other
// failure, one that kept the check from reaching a verdict, exits 2, as
// grep and diff do, so that a script never takes trouble for a verdict.
func verdictCommand(run func(ctx context.Context, args []string, stdout, stderr io.Writer) error) func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		err := run(ctx, args, stdout, stderr)
		var ue *usageError
		var ee *exitError
		if err == nil || errors.Is(err, flag.ErrHelp) || errors.As(err, &ue) || errors.As(err, &ee) {
			return err
		}
		return &exitError{code: 2, msg: err.Error()}
	}
}

const usage = `Sluice, the privacy-preserving data release gateway.

usage: sluice <command> [subcommand] [flags] [args]

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
               [--status N] [--request-id ID] [--object ID] [--since T] [--until T] [--limit N] [--newest] [--json]
                                        find records in the trail
  audit usage --dir D --subject ID [--key F] [--since T] [--until T] [--json]
                                        who used a person's data: the releases that held their records
  audit reindex --dir D [--redis ADDR [--prefix P] --replica R]
                                        rebuild the usage index from the trail
  policy test [-v] [--coverage] [--threshold P] [--json] [DIR]
                                        run the Rego tests of a policy directory (as opa test)
  policy eval --input FILE [--dir DIR]  print the decision for an input document
  policy explain (--token T | --role R) [--dir D | --config F] [METHOD] PATH
                                        print what a caller would get, without contacting upstreams
  policy risk (--token T | --role R [--dept D] [--district X] [--purpose P] [--sub S]) --dataset SRC/DS
              [--dir D | --config F] [--time T] [--json]
                                        read a caller's whole view of a dataset and report how far it singles people out
  policy lint [--config F] [--subjects FILE] [--time T] [--json] [DIR]
                                        report callers the policies let both read and count a dataset
  hub requests (list [--state S] | show ID) [--json]
                                        list sharing requests, or show one with its history
  hub grants (list [--state S] | show ID) [--json]
                                        list grants, or show one with its history
  hub demands (list [--state S] | show ID) [--json]
                                        list demands for data the catalogue lacks, or show one
  hub decide REQ (--approve | --reject | --need-info) [--reason R] [--fields JSON] [--valid-until T]
             [--max-rows N] [--min-k K] [--min-l L]
                                        approve a request (issuing a grant), reject it, or ask its requester for information
  hub revoke GRANT --reason R           revoke a grant: its releases end at once
  hub suspend GRANT --reason R          suspend a grant until it is resumed
  hub resume GRANT --reason R           resume a suspended grant
  version                               print the module version, commit, its time, modified and Go version (as --version)
  help [COMMAND]                        print this help, or a command's (as COMMAND --help)

Flags may come before or after arguments; "--" ends them. Every command
takes -h or --help.

The hub commands talk to a running gateway as a caller: --gateway URL with
--token T or --token-file F, or a demo's --dir D --role R.

exit status: 0 success, 1 failure, 2 usage error. audit verify, policy lint
and policy test exit 1 for their verdict (the trail is not intact, a
finding, a failed test) and 2 when they could not reach one.

examples:
  sluice demo --dir .sluice-demo
  sluice audit search --dir .sluice-demo --subject alice --since 24h
  sluice policy explain --role analyst GET /v1/health/visits
  sluice hub requests list --dir .sluice-demo --role steward_health
  sluice help policy risk
`

// commands are the program's commands; run dispatches to them, and
// prints usage for their help.
var commands = &group{
	subcommands: []subcommand{
		{"serve", "run the gateway", runServe},
		{"demo", "run the demo departments and a gateway before them", runDemo},
		{"token", "print a demo token, or revoke tokens", runToken},
		{"audit", "check and search the audit trail", auditCommands.run},
		{"policy", "test, evaluate, explain, assess and lint policies", policyCommands.run},
		{"hub", "list, show and decide the sharing hub's requests, grants and demands", hubCommands.run},
		{"version", "print the module version, commit and Go version", runVersion},
	},
}

// run is the whole program; main only calls it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usagef("", "no command given")
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 && args[0] == "help" {
			// sluice help policy risk is sluice policy risk --help.
			return run(ctx, append(args[1:len(args):len(args)], "--help"), stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return nil
	case "-version", "--version":
		args = append([]string{"version"}, args[1:]...)
	}
	err := commands.run(ctx, args, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
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
