package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/replicator/coord"
)

const raftUsage = `usage:
  tributary raft recover (--data-dir D | --config FILE) --peers FILE
      rewrite a STOPPED node's Raft state after the cluster lost its quorum:
      a new snapshot of its state with the configuration of FILE
      (hashicorp/raft peers.json v3: [{"id":"eu-1","address":"10.0.0.5:7400","non_voter":false}])
`

func cmdRaft(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, raftUsage)
		return usageErr("raft: no subcommand")
	}
	switch args[0] {
	case "recover":
		return cmdRaftRecover(args[1:], stdout, stderr)
	}
	fmt.Fprint(stderr, raftUsage)
	return usageErr("raft: unknown subcommand %q", args[0])
}

// cmdRaftRecover runs coord.Recover. Exit 2: bad usage, an invalid config or
// peers file; 1: the data dir is in use, holds no Raft state, or the
// recovery failed.
func cmdRaftRecover(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("raft recover", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "", "the node's node.data_dir")
	cfgPath := fs.String("config", "", "the node's config file (for node.data_dir and node.id), instead of --data-dir")
	peersPath := fs.String("peers", "", "peers file: hashicorp/raft peers.json v3 (required)")
	if err := fs.Parse(args); err != nil {
		return usageErr("%w", err)
	}
	const usage = "usage: tributary raft recover (--data-dir D | --config FILE) --peers FILE"
	if *peersPath == "" || fs.NArg() > 0 || (*dataDir == "") == (*cfgPath == "") {
		return usageErr(usage)
	}
	peers, err := coord.ReadPeersFile(*peersPath)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if *cfgPath != "" {
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		// A recovered node that is not in the new configuration could not
		// lead or vote: almost certainly the wrong file or node.
		if !slices.ContainsFunc(peers, func(p coord.RecoverPeer) bool { return p.ID == cfg.Node.ID }) {
			return &exitError{code: 2, err: fmt.Errorf("%s: lists no entry for this node (node.id %s in %s)", *peersPath, cfg.Node.ID, *cfgPath)}
		}
		*dataDir = cfg.Node.DataDir
	}
	res, err := coord.Recover(*dataDir, peers, nil)
	if err != nil {
		if errors.Is(err, coord.ErrDataDirInUse) {
			return fmt.Errorf("raft recover: %w", err)
		}
		return fmt.Errorf("raft recover of %s: %w", *dataDir, err)
	}
	fmt.Fprintf(stdout, "recovered the raft state of %s at log index %d (term %d): new snapshot %s\n", *dataDir, res.Index, res.Term, res.Snapshot)
	fmt.Fprintf(stdout, "state: %d members, %d tasks (%d assigned), policy bundle version %d\n", res.Members, res.Tasks, res.Assigned, res.Policy)
	fmt.Fprintln(stdout, "raft configuration:")
	for _, p := range res.Servers {
		role := "voter"
		if p.NonVoter {
			role = "non-voter"
		}
		fmt.Fprintf(stdout, "  %s %s (%s)\n", p.ID, p.Address, role)
	}
	if len(res.MembersNotInPeers) > 0 {
		fmt.Fprintf(stdout, "members not in the new configuration: %s; the leader marks them dead after cluster.failure_timeout and moves their tasks within their region; remove them with DELETE /v1/cluster/members/{id}\n",
			strings.Join(res.MembersNotInPeers, ", "))
	}
	fmt.Fprintln(stdout, "run the same recovery on every node listed, then start them")
	return nil
}
