package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

var versionHelp = help{
	synopsis: "version",
	text:     `Prints the module version of this program (from its build information), the VCS revision it was built from when known, and the Go version.`,
	example:  `wechatpay version`,
}

func (a *app) version(name string, args []string) error {
	fs := a.newFlagSet(name, versionHelp)
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	fmt.Fprintln(a.stdout, versionString(debug.ReadBuildInfo()))
	return nil
}

// versionString describes a build: "wechatpay v1.2.3 (go1.26.8)", with the
// revision and a "+dirty" mark when the build records them.
func versionString(info *debug.BuildInfo, ok bool) string {
	if !ok {
		return "wechatpay (unknown version: no build information) " + runtime.Version()
	}
	v := info.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "wechatpay %s", v)
	if rev != "" {
		fmt.Fprintf(&b, " (revision %.12s%s)", rev, dirty)
	}
	fmt.Fprintf(&b, " %s", info.GoVersion)
	return b.String()
}

// suggest returns the command closest to a mistyped name, or "" when none
// is close: at most 2 edits away, and fewer than the name's length.
func suggest(name string) string {
	best, bestD := "", 3
	for _, c := range commands() {
		d := editDistance(strings.ToLower(name), c.name)
		if d < bestD && d < len(name) {
			best, bestD = c.name, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
