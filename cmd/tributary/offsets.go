package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/internal/redact"
	"github.com/tributary-dev/tributary/replicator"
)

const offsetsUsage = "usage: tributary offsets translate (--config FILE | --addr URL [--token-file F] [--ca-file F]) --group G [--pipeline P]... [--json] [--apply] [--timeout D]"

// cmdOffsets dispatches the offsets subcommands.
func cmdOffsets(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "translate" {
		return usageErr("%s", offsetsUsage)
	}
	return cmdOffsetsTranslate(ctx, args[1:], stdout, stderr)
}

// pipelineList is a repeatable --pipeline flag (also comma-separated).
type pipelineList []string

func (l *pipelineList) String() string { return strings.Join(*l, ",") }

func (l *pipelineList) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// cmdOffsetsTranslate prints a consumer group's committed source offsets
// translated into target offsets, and with --apply commits them for the group
// in the target cluster.
func cmdOffsetsTranslate(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("offsets translate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "node config file (required)")
	group := fs.String("group", "", "consumer group whose source offsets are translated (required)")
	var pipelines pipelineList
	fs.Var(&pipelines, "pipeline", "only this Kafka pipeline (repeatable; default all)")
	asJSON := fs.Bool("json", false, "print JSON")
	apply := fs.Bool("apply", false, "commit the translated offsets for the group in the target cluster (the group must have no active members there)")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after this long")
	addr := fs.String("addr", "", "ask this node's HTTP API (GET /v1/offsets/translate) instead of reading the clusters with --config")
	var api apiFlags
	api.register(fs)
	if err := fs.Parse(args); err != nil {
		return usageErr("%w", err)
	}
	if (*path == "") == (*addr == "") || *group == "" || fs.NArg() > 0 {
		return usageErr("%s", offsetsUsage)
	}
	if *addr == "" && (api.tokenFile != "" || api.caFile != "") {
		return usageErr("--token-file and --ca-file go with --addr: with --config the command reads the clusters itself")
	}
	if *addr != "" && *apply {
		return usageErr("--apply needs --config: the offsets are committed from this machine")
	}
	// librdkafka may quote secret properties in its errors (see the daemon).
	red := redact.New()
	defer func() { err = red.Error(err) }()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var cfg *config.Config
	var res *replicator.GroupOffsets
	if *addr != "" {
		base := baseURL(*addr)
		client, err := api.client(base, *timeout)
		if err != nil {
			return err
		}
		q := url.Values{"group": {*group}}
		for _, p := range pipelines {
			q.Add("pipeline", p)
		}
		res = &replicator.GroupOffsets{}
		if _, err := getJSON(ctx, client, base+"/v1/offsets/translate?"+q.Encode(), res); err != nil {
			return fmt.Errorf("translating offsets of group %q: %w", *group, err)
		}
	} else {
		var err error
		if cfg, err = config.Load(*path); err != nil {
			return &exitError{code: 2, err: err}
		}
		red = redact.New(cfg.SecretValues()...)
		for _, name := range pipelines {
			if pc := cfg.Pipeline(name); pc == nil || pc.Source.Kafka == "" {
				return usageErr("--pipeline %s: not a Kafka pipeline of %s", name, *path)
			}
		}
		res, err = replicator.TranslateGroup(ctx, cfg, *group, pipelines)
		if err != nil {
			if errors.Is(err, replicator.ErrNoGroupOffsets) {
				return err // names the group already
			}
			return fmt.Errorf("translating offsets of group %q: %w", *group, err)
		}
	}
	for i := range res.Offsets {
		res.Offsets[i].Error = red.String(res.Offsets[i].Error)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "GROUP\tSOURCE TOPIC\tPARTITION\tSOURCE OFFSET\tTARGET TOPIC\tTARGET OFFSET\tNOTE")
		for _, o := range res.Offsets {
			target, note := fmt.Sprint(o.TargetOffset), ""
			switch {
			case o.Error != "":
				target, note = "-", o.Error
			case !o.Exact:
				note = "approximate (no lineage headers): may re-read, never skips"
			}
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\t%s\t%s\n", res.Group, o.SourceTopic, o.Partition, o.SourceOffset, o.TargetTopic, target, note)
		}
		w.Flush()
	}
	if failed := res.Failed(); len(failed) > 0 {
		return fmt.Errorf("%d of %d partitions of group %q could not be translated (first: %s/%d: %s)",
			len(failed), len(res.Offsets), *group, failed[0].SourceTopic, failed[0].Partition, failed[0].Error)
	}
	if *apply {
		if err := replicator.ApplyGroupOffsets(ctx, cfg, res); err != nil {
			return err
		}
		msg := fmt.Sprintf("committed %d offsets for group %q in target %s", len(res.Offsets), *group, cfg.Target)
		if *asJSON {
			fmt.Fprintln(stderr, msg) // stdout stays one JSON document
		} else {
			fmt.Fprintln(stdout, msg)
		}
	}
	return nil
}
