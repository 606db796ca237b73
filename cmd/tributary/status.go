package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tributary-dev/tributary/internal/daemon"
)

// cmdStatus prints the cluster as one node sees it, with each task's lag taken
// from the node that runs it (GET /v1/status?scope=cluster).
func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "http://127.0.0.1:7480", "HTTP address of any node")
	asJSON := fs.Bool("json", false, "print the node's /v1/status JSON as it is")
	var api apiFlags
	api.register(fs)
	if err := fs.Parse(args); err != nil {
		return usageErr("%w", err)
	}
	if fs.NArg() > 0 {
		return usageErr("usage: tributary status [--addr URL] [--json] [--token-file F] [--ca-file F]")
	}
	base := baseURL(*addr)
	client, err := api.client(base, 5*time.Second)
	if err != nil {
		return err
	}
	if *asJSON {
		raw, err := getJSON(ctx, client, base+"/v1/status", &daemon.Status{})
		if err != nil {
			return err
		}
		_, err = stdout.Write(raw)
		return err
	}
	// Lag lives on the node running a task: the cluster view has the asked
	// node collect it from the other members.
	var st daemon.Status
	if _, err := getJSON(ctx, client, base+"/v1/status?scope=cluster", &st); err != nil {
		return err
	}
	for _, u := range st.Unreachable {
		fmt.Fprintf(stderr, "tributary: %s: %s\n", u.ID, u.Error)
	}

	fmt.Fprintf(stdout, "leader: %s   term: %d   asked: %s (%s)\n\n", orDash(st.Cluster.Leader.ID), st.Cluster.Term, st.Node.ID, st.Cluster.RaftState)
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "MEMBER\tREGION\tRAFT\tHTTP\tALIVE")
	for _, m := range st.Cluster.Members {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%v\n", m.ID, m.Region, m.RaftAddr, m.HTTPAddr, m.Alive)
	}
	w.Flush()
	for _, m := range st.Cluster.Members {
		if m.Unhealthy != "" {
			fmt.Fprintf(stdout, "%s declines tasks: %s\n", m.ID, m.Unhealthy)
		}
	}
	fmt.Fprintln(stdout)
	w = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TASK\tREGION\tNODE\tSTATE\tPARTITIONS\tLAG\tREPLICATED\tERROR")
	for _, t := range st.Tasks {
		state, parts, lag, repl, errText := t.State, "-", "-", "-", ""
		if t.Lag != nil {
			state = t.Running
			parts = fmt.Sprint(t.Partitions)
			lag = fmt.Sprint(*t.Lag)
			repl = fmt.Sprint(t.Replicated)
			errText = t.Error
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Region, orDash(t.Node), state, parts, lag, repl, errText)
	}
	w.Flush()
	if st.Cluster.Unassigned > 0 {
		fmt.Fprintf(stdout, "\n%d task(s) unassigned: no live node in their region\n", st.Cluster.Unassigned)
	}
	return nil
}

func getJSON(ctx context.Context, client *http.Client, url string, v any) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, usageErr("bad address: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("asking %s: %w", url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", url, err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return nil, fmt.Errorf("%s: %s: the node wants a token: pass --token-file (or check the one given)", url, resp.Status)
	case resp.StatusCode == http.StatusForbidden:
		return nil, fmt.Errorf("%s: %s: the token's role may not do this", url, resp.Status)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%s: %s: %s", url, resp.Status, strings.TrimSpace(string(raw)))
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", url, err)
	}
	return raw, nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
