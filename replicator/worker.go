package replicator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/replicator/metrics"
)

// Worker runs the tasks assigned to this node: Assign starts the new ones and
// stops those taken away. A pipeline's topic refresh runs while the node runs at
// least one of its tasks. Whoever decides the assignment (a single node running
// everything, or the Raft leader) only calls Assign.
type Worker struct {
	cfg  *config.Config
	deps Deps
	log  *slog.Logger

	mu        sync.Mutex
	ctx       context.Context // set by Run; tasks started before Run wait for it
	pipelines map[string]*runningPipeline
	tasks     map[TaskID]*runningTask
	wanted    []TaskID
	wg        sync.WaitGroup
}

type runningPipeline struct {
	p      *Pipeline
	cancel context.CancelFunc
	done   chan struct{}
	tasks  int
}

type runningTask struct {
	t      *Task
	cancel context.CancelFunc
	done   chan struct{}
}

// NewWorker returns a worker for the Kafka pipelines of cfg.
func NewWorker(cfg *config.Config, deps Deps) (*Worker, error) {
	deps = deps.withDefaults()
	w := &Worker{cfg: cfg, deps: deps, log: deps.Logger, pipelines: map[string]*runningPipeline{}, tasks: map[TaskID]*runningTask{}}
	for _, p := range cfg.Pipelines {
		if p.Source.Kafka == "" {
			continue
		}
		pl, err := NewPipeline(cfg, p.Name, deps)
		if err != nil {
			return nil, err
		}
		w.pipelines[p.Name] = &runningPipeline{p: pl}
	}
	return w, nil
}

// AllTasks lists every task of the Kafka pipelines, in order.
func (w *Worker) AllTasks() []TaskID {
	var ids []TaskID
	for _, p := range w.cfg.Pipelines {
		if _, ok := w.pipelines[p.Name]; !ok {
			continue
		}
		for i := 0; i < p.Tasks; i++ {
			ids = append(ids, TaskID{p.Name, i})
		}
	}
	return ids
}

// Run starts the tasks assigned so far, then waits for ctx; on cancellation every
// task drains (commits or aborts its open transaction) before Run returns.
func (w *Worker) Run(ctx context.Context) error {
	w.mu.Lock()
	w.ctx = ctx
	err := w.applyLocked(w.wanted)
	w.mu.Unlock()
	if err != nil {
		return err
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
			w.mu.Lock()
			w.updateMetricsLocked()
			w.mu.Unlock()
		}
	}
	w.mu.Lock()
	err = w.applyLocked(nil)
	w.mu.Unlock()
	w.wg.Wait()
	return err
}

// Assign makes the set of running tasks equal to ids. Unknown tasks are an error
// (nothing changes then).
func (w *Worker) Assign(ids []TaskID) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, id := range ids {
		rp, ok := w.pipelines[id.Pipeline]
		if !ok || id.Index < 0 || id.Index >= rp.p.Tasks() {
			return fmt.Errorf("assigning task %s: no such task", id)
		}
	}
	w.wanted = append([]TaskID(nil), ids...)
	if w.ctx == nil {
		return nil
	}
	return w.applyLocked(ids)
}

func (w *Worker) applyLocked(ids []TaskID) error {
	want := map[TaskID]bool{}
	for _, id := range ids {
		want[id] = true
	}
	var stopping []*runningTask
	for id, rt := range w.tasks {
		if !want[id] {
			rt.cancel()
			stopping = append(stopping, rt)
			delete(w.tasks, id)
			w.log.Info("stopping task", "task", id.String())
		}
	}
	// Wait for stopped tasks to drain before starting anything, so that a task
	// handed back and forth never runs twice on this node.
	w.mu.Unlock()
	for _, rt := range stopping {
		<-rt.done
	}
	w.mu.Lock()
	for _, rt := range stopping {
		w.releasePipeline(rt.t.id.Pipeline)
	}
	if w.ctx == nil || w.ctx.Err() != nil {
		return nil
	}
	for id := range want {
		if _, ok := w.tasks[id]; ok {
			continue
		}
		rp := w.pipelines[id.Pipeline]
		if rp.tasks == 0 {
			pctx, cancel := context.WithCancel(w.ctx)
			rp.cancel, rp.done = cancel, make(chan struct{})
			w.wg.Add(1)
			go func(done chan struct{}) {
				defer w.wg.Done()
				defer close(done)
				if err := rp.p.Run(pctx); err != nil {
					w.log.Error("pipeline stopped", "pipeline", rp.p.Name(), "err", err)
				}
			}(rp.done)
		}
		rp.tasks++
		tctx, cancel := context.WithCancel(w.ctx)
		rt := &runningTask{t: rp.p.Task(id.Index), cancel: cancel, done: make(chan struct{})}
		w.tasks[id] = rt
		w.log.Info("starting task", "task", id.String())
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			defer close(rt.done)
			if err := rt.t.Run(tctx); err != nil && !errors.Is(err, context.Canceled) {
				w.log.Error("task ended", "task", id.String(), "err", err)
			}
		}()
	}
	w.updateMetricsLocked()
	return nil
}

func (w *Worker) releasePipeline(name string) {
	rp := w.pipelines[name]
	rp.tasks--
	if rp.tasks == 0 && rp.cancel != nil {
		rp.cancel()
		rp.cancel = nil
	}
}

func (w *Worker) updateMetricsLocked() {
	counts := map[string]int{}
	stalled := map[string]int64{}
	for name := range w.pipelines {
		stalled[name] = 0
	}
	for _, rt := range w.tasks {
		counts[rt.t.Status().State]++
		stalled[rt.t.id.Pipeline] += rt.t.stalled.Load()
	}
	for name, n := range stalled {
		w.deps.Metrics.Stalled.WithLabelValues(name).Set(float64(n))
	}
	for _, st := range metrics.TaskStates {
		if st == metrics.TaskUnassigned {
			continue // the assigner reports those
		}
		w.deps.Metrics.Tasks.WithLabelValues(st).Set(float64(counts[st]))
	}
}

// Status returns the status of the tasks running here, sorted by id.
func (w *Worker) Status() []TaskStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.updateMetricsLocked()
	out := make([]TaskStatus, 0, len(w.tasks))
	for _, rt := range w.tasks {
		out = append(out, rt.t.Status())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Ready reports whether every assigned task is running.
func (w *Worker) Ready() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, rt := range w.tasks {
		if !rt.t.Running() {
			return false
		}
	}
	return w.ctx != nil
}
