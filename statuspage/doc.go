// Package statuspage serves a node's status page: one HTML page, a style sheet
// and a small script, embedded in the binary so that the page works in an
// air-gapped data center (no build step, no fonts, scripts or styles from
// elsewhere).
//
// The page holds no state on the server. The script polls the node's
// /v1/status (same origin, relative URL, so a reverse proxy may mount the node
// under a path prefix) every 2 s and keeps what it needs between polls in the
// browser: the throughput of each task, computed from successive values of its
// replicated count, and the lag of each pipeline over the last 5 minutes for
// its chart. The script polls /v1/status?scope=cluster, in which the node asks
// the other members (in parallel, within 0.8 s) for the figures of the tasks
// they run, so the page shows every task's lag and counts whatever node runs
// it; members that do not answer are listed and their tasks shown without
// figures.
package statuspage
