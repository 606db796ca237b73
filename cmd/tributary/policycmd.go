package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/tributary-dev/tributary/policy"
)

const policyUsage = `usage:
  tributary policy lint [--schema F ...] PATH...     check policy files (exit 2 on errors)
  tributary policy test --policy PATH --schema F --record F [--pipeline P --topic T]
  tributary policy diff OLD NEW                        what a change protects more or less
`

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func cmdPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, policyUsage)
		return usageErr("policy: no subcommand")
	}
	switch args[0] {
	case "lint":
		return cmdPolicyLint(args[1:], stdout, stderr)
	case "test":
		return cmdPolicyTest(args[1:], stdout, stderr)
	case "diff":
		return cmdPolicyDiff(args[1:], stdout, stderr)
	}
	fmt.Fprint(stderr, policyUsage)
	return usageErr("policy: unknown subcommand %q", args[0])
}

// readSchema reads a schema file: Avro (.avsc, or any file whose JSON has a
// "type" of record), JSON Schema (.json with "$schema" or "properties") or
// Protobuf (.proto; its first message is the record's).
func readSchema(path string) (policy.Schema, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return policy.Schema{}, err
	}
	typ := policy.Avro
	text := string(b)
	if strings.HasSuffix(path, ".json") && (strings.Contains(text, `"$schema"`) || strings.Contains(text, `"properties"`)) {
		typ = policy.JSON
	}
	if strings.HasSuffix(path, ".proto") {
		typ = policy.Protobuf
	}
	return policy.Schema{Type: typ, Text: text, Name: filepath.Base(path)}, nil
}

func cmdPolicyLint(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("policy lint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var schemaFiles stringList
	fs.Var(&schemaFiles, "schema", "schema file to check rules against (repeatable)")
	if err := fs.Parse(args); err != nil {
		return usageErr("%w", err)
	}
	if fs.NArg() == 0 {
		return usageErr("usage: tributary policy lint [--schema F ...] PATH...")
	}
	var schemas []policy.Schema
	for _, f := range schemaFiles {
		s, err := readSchema(f)
		if err != nil {
			return usageErr("--schema %s: %w", f, err)
		}
		schemas = append(schemas, s)
	}
	rep := policy.Lint(fs.Args(), schemas)
	for _, w := range rep.Warnings {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	for _, e := range rep.Errors {
		fmt.Fprintf(stdout, "%s\n", e)
	}
	if !rep.OK() {
		return &exitError{code: 2, err: fmt.Errorf("%d error(s) in the policy files", len(rep.Errors))}
	}
	fmt.Fprintf(stdout, "ok: %s (%d warning(s))\n", strings.Join(rep.Set.Versions(), ", "), len(rep.Warnings))
	return nil
}

func cmdPolicyTest(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("policy test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	polPath := fs.String("policy", "", "policy file or folder")
	schemaPath := fs.String("schema", "", "writer schema (Avro .avsc or JSON Schema .json)")
	recordPath := fs.String("record", "", "sample record as JSON")
	pipeline := fs.String("pipeline", "", "apply only the policies of this pipeline (with --topic)")
	topic := fs.String("topic", "", "source topic, with --pipeline")
	if err := fs.Parse(args); err != nil {
		return usageErr("%w", err)
	}
	if *polPath == "" || *schemaPath == "" || *recordPath == "" || fs.NArg() > 0 {
		return usageErr("usage: tributary policy test --policy PATH --schema F --record F [--pipeline P --topic T]")
	}
	rep := policy.Lint([]string{*polPath}, nil)
	if !rep.OK() {
		for _, e := range rep.Errors {
			fmt.Fprintf(stdout, "%s\n", e)
		}
		return &exitError{code: 2, err: fmt.Errorf("%d error(s) in the policy files", len(rep.Errors))}
	}
	schema, err := readSchema(*schemaPath)
	if err != nil {
		return usageErr("--schema: %w", err)
	}
	record, err := os.ReadFile(*recordPath)
	if err != nil {
		return usageErr("--record: %w", err)
	}
	var opts []policy.Option
	if *pipeline != "" {
		opts = append(opts, policy.ForStream(*pipeline, *topic))
	}
	before, after, touches, err := policy.TestRecord(rep.Set, schema, record, opts...)
	if before != nil {
		printSideBySide(stdout, string(before), string(after))
	}
	for _, t := range touches {
		fmt.Fprintf(stdout, "%-28s %-10s by %s rules[%d] (%d value(s))\n", t.Path, t.Action, t.Ref(), t.Rule, t.Count)
	}
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("the record would be quarantined: %w", err)}
	}
	return nil
}

// printSideBySide prints two JSON texts in two columns, marking changed lines.
func printSideBySide(w io.Writer, before, after string) {
	bl, al := strings.Split(before, "\n"), strings.Split(after, "\n")
	width := 10
	for _, l := range bl {
		width = max(width, len(l))
	}
	width = min(width, 60)
	fmt.Fprintf(w, "%-*s   %s\n", width, "BEFORE", "AFTER")
	for i := 0; i < max(len(bl), len(al)); i++ {
		var b, a string
		if i < len(bl) {
			b = bl[i]
		}
		if i < len(al) {
			a = al[i]
		}
		mark := " "
		if a != b && after != "" {
			mark = "*"
		}
		fmt.Fprintf(w, "%-*s %s %s\n", width, b, mark, a)
	}
}

func cmdPolicyDiff(args []string, stdout, stderr io.Writer) error {
	if len(args) != 2 {
		return usageErr("usage: tributary policy diff OLD NEW")
	}
	load := func(p string) (*policy.Set, error) {
		rep := policy.Lint([]string{p}, nil)
		if !rep.OK() {
			var b strings.Builder
			for _, e := range rep.Errors {
				b.WriteString("\n" + e.Error())
			}
			return nil, &exitError{code: 2, err: fmt.Errorf("%s has errors:%s", p, b.String())}
		}
		return rep.Set, nil
	}
	oldSet, err := load(args[0])
	if err != nil {
		return err
	}
	newSet, err := load(args[1])
	if err != nil {
		return err
	}
	changes := policy.Diff(oldSet, newSet)
	if len(changes) == 0 {
		fmt.Fprintln(stdout, "no change in protection")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PIPELINE\tFIELD\tOLD\tNEW\tEFFECT")
	loosened := 0
	for _, c := range changes {
		effect := fmt.Sprint(c.Effect)
		if c.Loosening() {
			effect = "LESS PROTECTED  <-- check with compliance"
			loosened++
		}
		now := orDash(c.New)
		if c.Retired != "" {
			now = "(" + c.Retired + " retired)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Pipeline, c.Field, orDash(c.Old), now, effect)
	}
	tw.Flush()
	if loosened > 0 {
		fmt.Fprintf(stdout, "\nWARNING: %d field(s) become less protected\n", loosened)
	}
	return nil
}
