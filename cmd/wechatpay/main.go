// Command wechatpay downloads WeChat Pay platform certificates, makes signed
// APIv3 calls with verified responses, explains SIGN_ERROR, checks response
// and callback signatures offline, and runs the wechatpaytest sandbox as a
// server.
//
// Usage:
//
//	wechatpay <command> [flags] [arguments]
//
// Run "wechatpay help" for the list of commands and "wechatpay <command> -h"
// for the flags of one. Exit status: 0 success, 1 any other failure
// (network, I/O), 2 usage or configuration error, 3 a signature did not
// verify, 4 WeChat Pay answered with a non-2xx status.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
)

// Exit statuses, the same for every command.
const (
	exitOK       = 0
	exitFailure  = 1 // network, I/O, anything not below
	exitUsage    = 2 // bad flags, missing or bad credentials
	exitVerify   = 3 // a signature did not verify
	exitAPIError = 4 // WeChat Pay answered non-2xx
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is the whole program with its environment passed in, so that tests
// can drive it in-process.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{
		ctx:    context.Background(),
		getenv: os.Getenv,
		stdin:  stdin,
		stdout: stdout,
		stderr: stderr,
	}
	return a.main(args)
}

// app carries what a command may touch. Tests build their own with a fake
// environment and a cancellable context.
type app struct {
	ctx    context.Context // cancelled to stop long-running commands (sandbox)
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer

	// ready, if set, is called by the sandbox command once it listens.
	ready func(baseURL, dir string)
	// isTerminal, if set, replaces the check of whether a writer is a
	// terminal (for progress display).
	isTerminal func(io.Writer) bool
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(a *app, name string, args []string) error
}

func commands() []command {
	return []command{
		{"certs", "download, decrypt and verify platform certificates; write them as PEM files", (*app).certs},
		{"get", "signed GET of an API path; prints the verified response body", (*app).call},
		{"post", "signed POST with a JSON body (-d)", (*app).call},
		{"put", "signed PUT with a JSON body (-d)", (*app).call},
		{"patch", "signed PATCH with a JSON body (-d)", (*app).call},
		{"delete", "signed DELETE", (*app).call},
		{"bill", "download a day's trade or fund flow bill, check its hash, write it atomically", (*app).bill},
		{"payparams", "print the signed front-end payment parameters (JSAPI, mini-program, App) for a prepay_id", (*app).payparams},
		{"sign", "print a request's signing string and Authorization header (debug SIGN_ERROR)", (*app).sign},
		{"verify", "verify a response or callback signature offline", (*app).verify},
		{"sandbox", "run the WeChat Pay sandbox as a server and write its credentials", (*app).sandbox},
		{"notify", "have a running sandbox post a signed callback notification to a URL", (*app).notify},
		{"doctor", "check the merchant's setup step by step: hosts, clock, keys; say how to fix each problem", (*app).doctor},
		{"pay", "pay (or fail) an order on a running sandbox, as the payer would", (*app).pay},
		{"complaint", "file a consumer complaint against a paid order on a running sandbox", (*app).complaint},
		{"confirm-transfer", "confirm a transfer bill on a running sandbox, as the user would", (*app).confirmTransfer},
		{"demo", "walk through the library against an embedded sandbox", (*app).demo},
		{"version", "print the version of this program and of Go", (*app).version},
	}
}

func (a *app) main(args []string) int {
	if len(args) == 0 {
		a.topUsage(a.stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		if name == "help" && len(args) > 1 {
			return a.main([]string{args[1], "-h"})
		}
		a.topUsage(a.stdout)
		return exitOK
	}
	for _, c := range commands() {
		if c.name == name {
			return a.report(name, c.run(a, name, args[1:]))
		}
	}
	fmt.Fprintf(a.stderr, "wechatpay: unknown command %q\n", name)
	if s := suggest(name); s != "" {
		fmt.Fprintf(a.stderr, "Did you mean 'wechatpay %s'?\n", s)
	}
	fmt.Fprintf(a.stderr, "Run 'wechatpay help' for the list of commands.\n")
	return exitUsage
}

func (a *app) topUsage(w io.Writer) {
	fmt.Fprint(w, `wechatpay is a command-line client for WeChat Pay APIv3.

Usage:

	wechatpay <command> [flags] [arguments]

Commands:

`)
	cmds := commands()
	width := 0
	for _, c := range cmds {
		width = max(width, len(c.name))
	}
	for _, c := range cmds {
		fmt.Fprintf(w, "\t%-*s  %s\n", width, c.name, c.summary)
	}
	fmt.Fprintf(w, `
Credentials (every command that talks to WeChat Pay):

%s
	-sandbox              use an in-process sandbox with generated credentials
	-sandbox-dir DIR      use the credentials a running 'wechatpay sandbox' wrote into DIR

Exit status: 0 success; 1 other failure (network, I/O); 2 usage or
configuration error; 3 a signature did not verify; 4 WeChat Pay answered
with a non-2xx status.

Start with:

	wechatpay demo

Run 'wechatpay <command> -h' for the flags and an example of one command.
`, credentialTable())
}

func credentialTable() string {
	var b strings.Builder
	for _, s := range credSpecs() {
		fmt.Fprintf(&b, "\t-%-20s %s (or $%s)\n", s.flag+" "+s.arg, strings.ReplaceAll(s.usage, "`", ""), s.env)
	}
	return strings.TrimRight(b.String(), "\n")
}
