package admin

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/dns"
)

// DNSCommand is `ztunnel dns check`: it asks a running ztunnel's /debug/dns what it
// would answer a query from --src for a name, and why. Exit status: 0 answered from the
// mesh, 3 forwarded upstream, 2 usage, errors, or a query refused without a lookup.
func DNSCommand(args []string, stdout, stderr io.Writer) int {
	const usage = "usage: ztunnel dns check --src <ip> [--type A|AAAA|…] [--admin host:port] <name>"
	fs := flag.NewFlagSet("dns check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	src := fs.String("src", "", "source IP of the asking pod")
	qtype := fs.String("type", "A", "query type")
	addr := fs.String("admin", "127.0.0.1:15000", "ztunnel admin address")
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	var names []string
	for rest := args[1:]; ; { // flags may come before or after the name
		if err := fs.Parse(rest); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		names, rest = append(names, fs.Arg(0)), fs.Args()[1:]
	}
	if _, ok := dns.ParseType(*qtype); *src == "" || len(names) != 1 || !ok {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	q := url.Values{"src": {*src}, "name": {names[0]}, "type": {*qtype}}
	var e dns.Explanation
	if err := getJSON("http://"+*addr+"/debug/dns?"+q.Encode(), &e); err != nil {
		fmt.Fprintf(stderr, "ztunnel dns check: %v\n", err)
		return 2
	}
	printDNS(stdout, e)
	switch e.Result {
	case "mesh":
		return 0
	case "forward":
		return 3
	}
	return 2
}

func getJSON(u string, v any) error {
	client := http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(u)
	if err != nil {
		return fmt.Errorf("asking ztunnel: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ztunnel answered %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("reading ztunnel's answer: %w", err)
	}
	return nil
}

func printDNS(w io.Writer, e dns.Explanation) {
	client := e.Client
	if client == "" {
		client = "no workload"
	}
	verdict := map[string]string{"mesh": "MESH", "forward": "FORWARD", "error": e.Rcode}[e.Result]
	fmt.Fprintf(w, "%s  %s %s from %s (%s)\n", verdict, e.Type, e.Name, e.Src, client)
	fmt.Fprintf(w, "  because: %s\n", e.Reason)
	if e.Alias != "" && e.Alias != strings.TrimSuffix(e.Name, ".") {
		fmt.Fprintf(w, "  as: %s\n", e.Alias)
	}
	if e.Cname != "" {
		fmt.Fprintf(w, "  answer: CNAME %s, then its records\n", e.Cname)
	}
	if len(e.Records) > 0 {
		fmt.Fprintf(w, "  records: %s (TTL 30 s, in random order)\n", strings.Join(e.Records, ", "))
	}
	if e.Result == "forward" {
		fmt.Fprintf(w, "  upstream: %s\n", strings.Join(e.Upstreams, ", "))
	}
	if len(e.Tried) > 0 {
		fmt.Fprintf(w, "  names tried: %s\n", strings.Join(e.Tried, ", "))
	}
}
