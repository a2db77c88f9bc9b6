package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// usageError is a mistake in how a command was invoked: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// flagError is a flag the flag package already complained about.
type flagError struct{ err error }

func (e *flagError) Error() string { return e.err.Error() }

// exitError carries a finished message and the exit status to go with it.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// help describes a command for -h.
type help struct {
	synopsis string // after "Usage: wechatpay "
	text     string // what it does
	example  string // one or more example lines, without the leading tab
}

// newFlagSet returns a FlagSet whose errors go to stderr and whose -h
// output (the help text, an example and the flags) goes to stdout.
func (a *app) newFlagSet(name string, h help) *flagSet {
	fs := flag.NewFlagSet("wechatpay "+name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	f := &flagSet{FlagSet: fs, help: h, stdout: a.stdout}
	fs.Usage = func() {} // we print usage ourselves, only for -h
	return f
}

type flagSet struct {
	*flag.FlagSet
	help   help
	stdout io.Writer
	hidden map[string]bool // accepted, but not used by the command: left out of -h
}

func (f *flagSet) printHelp() {
	w := f.stdout
	fmt.Fprintf(w, "Usage: wechatpay %s\n\n%s\n", f.help.synopsis, strings.TrimSpace(f.help.text))
	if f.help.example != "" {
		fmt.Fprintf(w, "\nExample:\n\n")
		for line := range strings.SplitSeq(strings.TrimSpace(f.help.example), "\n") {
			fmt.Fprintf(w, "\t%s\n", line)
		}
	}
	// Only the flags the command uses: a copy without the hidden ones.
	shown := flag.NewFlagSet(f.Name(), flag.ContinueOnError)
	f.VisitAll(func(fl *flag.Flag) {
		if !f.hidden[fl.Name] {
			shown.Var(fl.Value, fl.Name, fl.Usage)
			shown.Lookup(fl.Name).DefValue = fl.DefValue
		}
	})
	hasFlags := false
	shown.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprintf(w, "\nFlags:\n")
		shown.SetOutput(w)
		shown.PrintDefaults()
	}
	if len(f.hidden) > 0 {
		fmt.Fprintf(w, "\nThe other credential flags are accepted and ignored, so that one set of flags\nserves every command.\n")
	}
}

// parse parses args, allowing flags before, between and after positional
// arguments: it parses flags up to the first positional argument, sets
// that aside, and parses the rest again. After "--" everything is
// positional. -h prints the help and returns flag.ErrHelp.
func (f *flagSet) parse(args []string) ([]string, error) {
	var pos []string
	for {
		err := f.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			f.printHelp()
			return nil, flag.ErrHelp
		}
		if err != nil {
			return nil, &flagError{err}
		}
		rest := f.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// headerFlag collects repeated -H 'Name: value' flags.
type headerFlag [][2]string

func (h *headerFlag) String() string { return "" }

func (h *headerFlag) Set(s string) error {
	name, value, ok := strings.Cut(s, ":")
	name = strings.TrimSpace(name)
	if !ok || name == "" || strings.ContainsAny(name, " \t\r\n") {
		return fmt.Errorf("want 'Name: value', got %q", s)
	}
	*h = append(*h, [2]string{name, strings.TrimSpace(value)})
	return nil
}

// bodyFlag is -d: a literal body, @FILE, or @- for standard input. It
// remembers whether it was given at all.
type bodyFlag struct {
	value string
	set   bool
}

func (b *bodyFlag) String() string { return "" }

func (b *bodyFlag) Set(s string) error {
	b.value, b.set = s, true
	return nil
}

// read returns the body bytes exactly: nothing is trimmed, since the
// signature covers every byte.
func (b *bodyFlag) read(stdin io.Reader) ([]byte, error) {
	if !b.set {
		return nil, nil
	}
	name, ok := strings.CutPrefix(b.value, "@")
	if !ok {
		return []byte(b.value), nil
	}
	if name == "-" {
		data, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("reading the body from standard input: %w", err)
		}
		return data, nil
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, usagef("-d @%s: %v", name, err)
	}
	return data, nil
}
