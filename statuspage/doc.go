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
// its chart. Lag and throughput are measured by the node that runs a task; for
// tasks that run elsewhere the page links to that node's own page instead of
// fetching across origins.
package statuspage
