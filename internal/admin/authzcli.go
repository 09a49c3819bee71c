package admin

import (
	"flag"
	"fmt"
	"io"
	"net/url"
	"text/tabwriter"
)

// AuthzCommand is `ztunnel authz check`: it asks a running ztunnel's /debug/authz and
// prints the answer for people. Exit status: 0 allowed, 3 denied, 2 usage or errors.
func AuthzCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("authz check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	src := fs.String("src", "", "source IP")
	srcID := fs.String("src-id", "", "source identity, spiffe://<td>/ns/<ns>/sa/<sa> (empty: plaintext)")
	dst := fs.String("dst", "", "destination workload ip:port (the target port)")
	addr := fs.String("admin", "127.0.0.1:15000", "ztunnel admin address")
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprintln(stderr, "usage: ztunnel authz check --src <ip> [--src-id <spiffe id>] --dst <ip:port> [--admin host:port]")
		return 2
	}
	if err := fs.Parse(args[1:]); err != nil || *src == "" || *dst == "" {
		fmt.Fprintln(stderr, "ztunnel authz check: --src and --dst are required")
		return 2
	}
	q := url.Values{"src": {*src}, "dst": {*dst}}
	if *srcID != "" {
		q.Set("srcId", *srcID)
	}
	a, err := fetchAnswer("http://" + *addr + "/debug/authz?" + q.Encode())
	if err != nil {
		fmt.Fprintf(stderr, "ztunnel authz check: %v\n", err)
		return 2
	}
	printAnswer(stdout, a)
	if a.Decision == "allow" {
		return 0
	}
	return 3
}

func fetchAnswer(u string) (AuthzAnswer, error) {
	var a AuthzAnswer
	return a, getJSON(u, &a)
}

func printAnswer(w io.Writer, a AuthzAnswer) {
	id := a.SrcIdentity
	if id == "" {
		id = "no identity (plaintext)"
	}
	dst := a.DstWorkload
	if dst == "" {
		dst = "unknown workload"
	}
	verdict := map[string]string{"allow": "ALLOW", "deny": "DENY"}[a.Decision]
	fmt.Fprintf(w, "%s  %s (%s) -> %s (%s)\n", verdict, a.Src, id, a.Dst, dst)
	reason := a.Reason
	if a.Policy != "" {
		reason += " " + a.Policy
	}
	if a.Where != nil {
		reason += fmt.Sprintf(" (rule %d, clause %d, match %d)", a.Where.Rule, a.Where.Clause, a.Where.Match)
	}
	fmt.Fprintf(w, "  because: %s\n", reason)
	if len(a.DryRun) > 0 {
		fmt.Fprintf(w, "  dry-run policies that matched: %v\n", a.DryRun)
	}
	if len(a.Considered) == 0 {
		fmt.Fprintln(w, "  no policy applies to this destination")
		return
	}
	fmt.Fprintln(w, "  policies considered:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range a.Considered {
		result := "no match"
		if c.Matched {
			result = fmt.Sprintf("matched (rule %d, clause %d, match %d)", c.Where.Rule, c.Where.Clause, c.Where.Match)
		}
		dry := ""
		if c.DryRun {
			dry = " dry-run"
		}
		fmt.Fprintf(tw, "    %s\t%s%s\t%s\t%s\n", c.Policy, c.Action, dry, c.Via, result)
	}
	tw.Flush()
}
