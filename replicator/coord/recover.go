package coord

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
)

// RecoverPeer is one entry of a peers file: hashicorp/raft's peers.json
// version 3 format, [{"id":"eu-1","address":"10.0.0.5:7400","non_voter":false}].
type RecoverPeer struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	NonVoter bool   `json:"non_voter"`
}

// ReadPeersFile reads and checks a peers file (see RecoverPeer). Every error
// names the file, and the entry it is about: bad JSON (with line and
// column), unknown fields, an empty id or address, an address that is not
// host:port, a duplicate id or address, no voter.
func ReadPeersFile(path string) ([]RecoverPeer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading peers file: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var peers []RecoverPeer
	if err := dec.Decode(&peers); err != nil {
		var off int64 = -1
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			off = se.Offset
		case errors.As(err, &te):
			off = te.Offset
		}
		if off >= 0 {
			line, col := lineCol(b, off-1) // Offset is just past the bad byte
			return nil, fmt.Errorf("%s:%d:%d: %w (want peers.json v3: [{\"id\":\"eu-1\",\"address\":\"10.0.0.5:7400\",\"non_voter\":false}])", path, line, col, err)
		}
		return nil, fmt.Errorf("%s: %w (want peers.json v3: [{\"id\":\"eu-1\",\"address\":\"10.0.0.5:7400\",\"non_voter\":false}])", path, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: data after the JSON array", path)
	}
	var errs []error
	ids, addrs := map[string]int{}, map[string]int{}
	voters := 0
	for i, p := range peers {
		bad := func(format string, a ...any) {
			errs = append(errs, fmt.Errorf("%s: entry %d (id %q): %s", path, i, p.ID, fmt.Sprintf(format, a...)))
		}
		if p.ID == "" {
			bad("id is empty")
		} else if j, ok := ids[p.ID]; ok {
			bad("duplicate id: entry %d has it too", j)
		} else {
			ids[p.ID] = i
		}
		if p.Address == "" {
			bad("address is empty")
		} else if err := advertisable(p.Address); err != nil {
			bad("address %q: %v", p.Address, err)
		} else if j, ok := addrs[p.Address]; ok {
			bad("duplicate address %s: entry %d has it too", p.Address, j)
		} else {
			addrs[p.Address] = i
		}
		if !p.NonVoter {
			voters++
		}
	}
	if len(peers) == 0 {
		errs = append(errs, fmt.Errorf("%s: lists no peer", path))
	} else if voters == 0 {
		errs = append(errs, fmt.Errorf("%s: lists no voter (every entry has non_voter true)", path))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return peers, nil
}

// lineCol returns the 1-based line and column of byte off of b.
func lineCol(b []byte, off int64) (line, col int) {
	off = min(max(off, 0), int64(len(b)))
	line = 1 + bytes.Count(b[:off], []byte("\n"))
	col = int(off) - bytes.LastIndexByte(b[:off], '\n')
	return line, col
}

// RecoverResult says what Recover did.
type RecoverResult struct {
	// Servers is the new Raft configuration.
	Servers []RecoverPeer
	// Index and Term are those of the last log entry applied, which the new
	// snapshot stands for.
	Index, Term uint64
	// Snapshot is the id of the snapshot written.
	Snapshot string
	// Members, Tasks and Assigned count the recovered state; Policy is its
	// bundle version (0: none).
	Members, Tasks, Assigned int
	Policy                   int64
	// MembersNotInPeers are members of the recovered state that the new
	// configuration lacks: the leader marks them dead after
	// cluster.failure_timeout and moves their tasks within their region;
	// remove them with DELETE /v1/cluster/members/{id}.
	MembersNotInPeers []string
}

// Recover rewrites the Raft state of a stopped node's data dir after the
// cluster lost its quorum for good: it replays the node's snapshot and log
// into the FSM (as raft.RecoverCluster does) and writes a new snapshot of
// that state holding the configuration of peers, then compacts the log. The
// node, restarted, forms a cluster of those peers with its state intact
// (members, tasks, assignments, load, policy bundle); run it on every node
// listed, with the same file, before starting any of them.
//
// It refuses a data dir in use (ErrDataDirInUse) and one without Raft state;
// it fails without writing anything when an entry or snapshot has a version
// this build does not understand (a *HaltedError: recover with the newer
// binary). Uncommitted entries of the log are applied too: a recovery may
// keep a change the old cluster never committed.
func Recover(dataDir string, peers []RecoverPeer, logger *slog.Logger) (RecoverResult, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var res RecoverResult
	dir := filepath.Join(dataDir, "raft")
	if _, err := os.Stat(dir); err != nil {
		return res, fmt.Errorf("data dir %s holds no raft state: %w", dataDir, err)
	}
	hl := newHCLogAdapter(logger.With("component", "raft"), time.Now)
	st, err := openStores(dir, hl, 0)
	if err != nil {
		return res, err
	}
	defer st.close()

	var conf raft.Configuration
	for _, p := range peers {
		s := raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Address)}
		if p.NonVoter {
			s.Suffrage = raft.Nonvoter
		}
		conf.Servers = append(conf.Servers, s)
	}
	rc := raft.DefaultConfig()
	rc.LocalID = "tributary-raft-recover"
	rc.Logger = hl
	rc.NoLegacyTelemetry = true
	f := newFSM(nil)
	_, trans := raft.NewInmemTransport("")
	defer trans.Close()
	rerr := raft.RecoverCluster(rc, f, st.wal, st.wal, st.snaps, trans, conf)
	if h := f.haltErr(); h != nil {
		// RecoverCluster failed at its snapshot, before changing anything.
		return res, fmt.Errorf("recovering %s: %w", dir, h)
	}
	if rerr != nil {
		return res, fmt.Errorf("recovering %s: %w", dir, rerr)
	}
	snaps, err := st.snaps.List()
	if err != nil || len(snaps) == 0 {
		return res, fmt.Errorf("recovering %s: listing the new snapshot: %v", dir, err)
	}
	res.Servers, res.Index, res.Term, res.Snapshot = peers, snaps[0].Index, snaps[0].Term, snaps[0].ID
	listed := map[string]bool{}
	for _, p := range peers {
		listed[p.ID] = true
	}
	f.view(func(s *state) {
		res.Members, res.Tasks = len(s.Members), len(s.Tasks)
		for id := range s.Tasks {
			if s.Assignments[id].Node != "" {
				res.Assigned++
			}
		}
		if s.Policy != nil {
			res.Policy = s.Policy.Version
		}
		for _, id := range sortedKeys(s.Members) {
			if !listed[id] {
				res.MembersNotInPeers = append(res.MembersNotInPeers, id)
			}
		}
	})
	logger.Info("recovered raft state with a new configuration", "data_dir", dataDir, "servers", len(peers),
		"index", res.Index, "term", res.Term, "snapshot", res.Snapshot)
	return res, nil
}
