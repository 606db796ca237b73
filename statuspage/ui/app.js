// tributary status page: polls v1/status?scope=cluster (same origin) and
// renders it. In that view the node asks the other members for the figures of
// the tasks they run, so every task has its figures whatever node runs it
// (except on members that do not answer, which the answer lists).
//
// State kept in the browser between polls:
//   - samples of each task's replicated count, for its throughput;
//   - the summed lag of each pipeline's tasks, for the chart (5 minutes).
// Text from the server is always inserted as text (textContent), never as HTML.
'use strict';

(function () {
  const POLL_MS = 2000;
  const FETCH_TIMEOUT_MS = 5000;
  const HISTORY_MS = 5 * 60 * 1000;
  const RATE_WINDOW_MS = 10000;
  const STALE_MS = 3 * POLL_MS + FETCH_TIMEOUT_MS;
  // The cluster view: the node asks the other members (within 0.8 s) for the
  // figures of the tasks they run.
  const STATUS_URL = 'v1/status?scope=cluster';
  // Where the tab keeps the bearer token a node with tokens asks for.
  const TOKEN_KEY = 'tributary.token';
  // An XML namespace name, never fetched.
  const SVG_NS = 'http://www.w3.org/2000/svg';

  const intFmt = new Intl.NumberFormat();
  const dec1Fmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
  const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  const dateTimeFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

  const mem = {
    nodeID: null,
    lastOK: 0,
    lastError: null,
    lagHistory: new Map(), // pipeline -> [{t, lag, partial}]; lag null when no task had figures
    samples: new Map(), // task id + '@' + measuring node -> [{t, n}]
    pipelineEls: new Map(), // pipeline -> {article, region, summary, chart, table, tbody}
    lastModel: null, // for the alerts while the node does not answer
  };

  // ---- small DOM helpers ----

  function byId(id) {
    return document.getElementById(id);
  }

  // el builds an element: attrs may hold class, text, and any attribute;
  // children are nodes or strings (inserted as text).
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    setAttrs(e, attrs);
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      e.append(typeof c === 'object' ? c : String(c));
    }
    return e;
  }

  function svg(tag, attrs) {
    const e = document.createElementNS(SVG_NS, tag);
    setAttrs(e, attrs);
    return e;
  }

  function setAttrs(e, attrs) {
    if (!attrs) return;
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'text') e.textContent = String(v);
      else if (k === 'class') e.setAttribute('class', v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
  }

  // sync makes parent's children equal to nodes, keeping existing children
  // that are already equal, so that text selection and focus survive a refresh
  // when nothing changed.
  function sync(parent, nodes) {
    for (let i = 0; i < nodes.length; i++) {
      const cur = parent.childNodes[i];
      if (!cur) parent.append(nodes[i]);
      else if (!cur.isEqualNode(nodes[i])) parent.replaceChild(nodes[i], cur);
    }
    while (parent.childNodes.length > nodes.length) parent.lastChild.remove();
  }

  function setText(id, text) {
    const e = byId(id);
    if (e.textContent !== text) e.textContent = text;
  }

  function badge(text, kind, title) {
    return el('span', { class: 'badge ' + kind, title: title }, text);
  }

  // ---- formatting ----

  function fmtInt(n) {
    return typeof n === 'number' && isFinite(n) ? intFmt.format(n) : '—';
  }

  function fmtRate(r) {
    if (typeof r !== 'number' || !isFinite(r)) return '—';
    return r >= 100 ? intFmt.format(Math.round(r)) : dec1Fmt.format(r);
  }

  function fmtSeconds(s) {
    if (typeof s !== 'number' || !isFinite(s)) return '—';
    if (s < 10) return dec1Fmt.format(s) + ' s';
    if (s < 120) return intFmt.format(Math.round(s)) + ' s';
    if (s < 7200) return dec1Fmt.format(s / 60) + ' min';
    return dec1Fmt.format(s / 3600) + ' h';
  }

  function fmtAgo(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.round(s / 60) + ' min ago';
    if (s < 172800) return Math.round(s / 3600) + ' h ago';
    return Math.round(s / 86400) + ' days ago';
  }

  // parseTime returns a Date, or null for absent and zero Go times.
  function parseTime(s) {
    if (!s) return null;
    const d = new Date(s);
    if (isNaN(d.getTime()) || d.getUTCFullYear() < 2000) return null;
    return d;
  }

  function compactNumber(n) {
    if (n >= 1e9) return dec1Fmt.format(n / 1e9) + 'G';
    if (n >= 1e6) return dec1Fmt.format(n / 1e6) + 'M';
    if (n >= 1e4) return dec1Fmt.format(n / 1e3) + 'k';
    return intFmt.format(n);
  }

  // nodeURL is the status page of another member, or null.
  function nodeURL(member) {
    if (!member || !member.http_addr) return null;
    return window.location.protocol + '//' + member.http_addr + '/';
  }

  function nodeLink(m, id) {
    const url = id !== m.self ? nodeURL(m.memberByID.get(id)) : null;
    return url ? el('a', { href: url, title: 'Status page of ' + id }, id) : id;
  }

  // joinNodes lists node ids (links to their pages), this node marked.
  function joinNodes(m, ids) {
    const out = [];
    for (const id of ids) {
      if (out.length) out.push(', ');
      out.push(nodeLink(m, id));
      if (id === m.self) out.push(' (this node)');
    }
    return out;
  }

  function taskIndex(id) {
    const i = id.lastIndexOf('/');
    const n = i >= 0 ? Number(id.slice(i + 1)) : NaN;
    return isNaN(n) ? 0 : n;
  }

  // ---- browser-side measurements ----

  // rateOf records a task's replicated count (key: the task and the node that
  // measured it, whose counter it is) and returns its records/s over the last
  // RATE_WINDOW_MS, or null until two samples exist.
  function rateOf(id, n, now) {
    let s = mem.samples.get(id);
    if (!s || (s.length && n < s[s.length - 1].n)) {
      s = []; // first sight, or the counter restarted (task moved or restarted)
      mem.samples.set(id, s);
    }
    s.push({ t: now, n: n });
    while (s.length > 2 && now - s[1].t >= RATE_WINDOW_MS) s.shift();
    if (s.length < 2) return null;
    const first = s[0];
    const dt = (now - first.t) / 1000;
    return dt >= 1 ? (n - first.n) / dt : null;
  }

  function recordLag(pipeline, lag, partial, now) {
    let h = mem.lagHistory.get(pipeline);
    if (!h) {
      h = [];
      mem.lagHistory.set(pipeline, h);
    }
    h.push({ t: now, lag: lag, partial: partial });
    while (h.length && now - h[0].t > HISTORY_MS) h.shift();
  }

  function forget(map, keep) {
    for (const k of Array.from(map.keys())) {
      if (!keep.has(k)) map.delete(k);
    }
  }

  // ---- the model: tasks grouped by pipeline ----

  function model(st, now) {
    const cluster = st.cluster || {};
    const self = (st.node && st.node.id) || cluster.node || '';
    // The cluster view carries every task's figures in .tasks; a plain answer
    // (an older node behind the same URL) only those of this node's tasks.
    const clusterView = st.scope === 'cluster';
    const members = (cluster.members || []).slice().sort((a, b) => a.id.localeCompare(b.id));
    const memberByID = new Map(members.map((m) => [m.id, m]));
    const unreachable = new Map((st.unreachable || []).map((u) => [u.id, u.error || 'no answer']));
    const local = new Map((st.local_tasks || []).map((t) => [t.id, t]));
    const views = st.tasks && st.tasks.length ? st.tasks : cluster.tasks || [];
    const tasks = views.map((v) => ({ view: v, local: local.get(v.id) || null }));
    // Tasks the worker runs that Raft does not list (none today; be complete).
    const listed = new Set(views.map((v) => v.id));
    for (const [id, l] of local) {
      if (!listed.has(id)) {
        const v = Object.assign({}, l, { node: self, state: 'assigned', running_state: l.state, measured_by: self });
        tasks.push({ view: v, local: l });
      }
    }

    const pipelines = new Map();
    const sampled = new Set();
    let hasLagSeconds = false;
    for (const t of tasks) {
      const v = t.view;
      const l = t.local;
      const name = v.pipeline || (l && l.pipeline) || '(unknown)';
      let p = pipelines.get(name);
      if (!p) {
        p = {
          name: name, regions: new Set(), tasks: [], nodes: new Set(), measuredOn: new Set(),
          lag: 0, lagSeconds: null, rate: null, replicated: 0, quarantined: 0,
          figured: 0, missing: 0, running: 0, unassigned: 0, failed: 0, pubsub: 0,
        };
        pipelines.set(name, p);
      }
      if (v.region) p.regions.add(v.region);
      // measuredBy: the node whose figures the row shows, '' when none.
      const measuredBy = clusterView ? v.measured_by || '' : l ? self : '';
      const src = clusterView ? v : l || {};
      const row = {
        id: v.id,
        node: v.node || '',
        unassigned: v.state === 'unassigned',
        region: v.region || '',
        pubsub: v.source === 'pubsub',
        measuredBy: measuredBy,
        state: measuredBy ? (clusterView ? v.running_state : l.state) || '' : '',
        figures: false,
        partitions: src.partitions || 0,
        lag: typeof src.lag_records === 'number' ? src.lag_records : null,
        lagSeconds: typeof src.lag_seconds === 'number' ? src.lag_seconds : typeof v.lag_seconds === 'number' ? v.lag_seconds : null,
        replicated: src.replicated || 0,
        quarantined: src.quarantined || 0,
        error: (measuredBy && src.error) || v.error || '',
        rate: null,
      };
      // Lag is what a measurement has; Pub/Sub receivers report their state only.
      row.figures = !!measuredBy && row.lag !== null;
      if (row.pubsub) p.pubsub++;
      if (row.node && !row.unassigned) p.nodes.add(row.node);
      if (measuredBy && row.state === 'running') p.running++;
      if (row.state === 'failed') p.failed++;
      if (row.unassigned) p.unassigned++;
      if (row.figures) {
        const key = row.id + '@' + measuredBy;
        sampled.add(key);
        row.rate = rateOf(key, row.replicated, now);
        p.figured++;
        p.measuredOn.add(measuredBy);
        p.lag += row.lag;
        p.replicated += row.replicated;
        p.quarantined += row.quarantined;
        if (row.rate !== null) p.rate = (p.rate || 0) + row.rate;
        if (row.lagSeconds !== null) {
          hasLagSeconds = true;
          p.lagSeconds = Math.max(p.lagSeconds || 0, row.lagSeconds);
        }
      } else if (!row.pubsub) {
        p.missing++;
      }
      p.tasks.push(row);
    }
    for (const p of pipelines.values()) {
      p.tasks.sort((a, b) => taskIndex(a.id) - taskIndex(b.id) || a.id.localeCompare(b.id));
      // A sum without some tasks is drawn dashed; none at all leaves a gap.
      if (p.figured > 0 || p.missing > 0) recordLag(p.name, p.figured ? p.lag : null, p.missing > 0, now);
    }
    const names = Array.from(pipelines.keys()).sort();
    forget(mem.lagHistory, new Set(names.filter((n) => pipelines.get(n).figured + pipelines.get(n).missing > 0)));
    forget(mem.samples, sampled);
    // Pipelines that run with governance: none: their records are never masked.
    const ungoverned = new Set((st.pipelines || []).filter((p) => p.governance === 'none').map((p) => p.name));
    return { self, cluster, clusterView, members, memberByID, unreachable, pipelines, names, hasLagSeconds, policy: st.policy || {}, tasks, ungoverned };
  }

  // ---- rendering ----

  function render(st, now) {
    const nodeID = (st.node && st.node.id) || '';
    if (mem.nodeID !== null && mem.nodeID !== nodeID) {
      // Another node answers at this address (proxy, restart with a new id):
      // its counters and history are not ours.
      mem.lagHistory.clear();
      mem.samples.clear();
    }
    mem.nodeID = nodeID;
    const m = model(st, now);
    mem.lastModel = m;
    renderHeader(st, m);
    renderPipelines(m, now);
    renderMembers(m);
    renderPolicy(m, now);
    renderAlerts(m);
  }

  function renderHeader(st, m) {
    const node = st.node || {};
    setText('node-id', node.id || '—');
    setText('node-region', node.region || '—');
    setText('node-version', node.version || '—');
    const sec = byId('node-security');
    // "off": security.insecure; "loopback": no TLS, reachable from this machine only.
    if (st.security === 'off') sync(sec, [badge('off', 'bad', 'security.insecure is set: anyone who reaches this node can control it')]);
    else sync(sec, [el('span', null, st.security || '—')]);
    const c = m.cluster;
    const raft = byId('raft-state');
    const kind = c.raft_state === 'leader' ? 'ok' : c.raft_state === 'follower' ? 'info' : 'warn';
    sync(raft, [badge(c.raft_state || 'unknown', kind)]);
    setText('raft-term', c.term !== undefined ? String(c.term) : '—');
    const leader = c.leader || {};
    const leaderEl = byId('raft-leader');
    if (!leader.id) {
      sync(leaderEl, [badge('none', 'bad', 'No Raft leader is known to this node')]);
    } else if (leader.id === m.self) {
      sync(leaderEl, [el('span', null, leader.id + ' (this node)')]);
    } else {
      const url = nodeURL(m.memberByID.get(leader.id) || leader);
      sync(leaderEl, [url ? el('a', { href: url }, leader.id) : el('span', null, leader.id)]);
    }
    if (node.id) document.title = 'tributary · ' + node.id;
  }

  function renderPipelines(m, now) {
    const list = byId('pipeline-list');
    if (m.names.length === 0) {
      sync(list, [el('p', { class: 'empty' }, 'No pipelines with tasks are configured on this cluster.')]);
      mem.pipelineEls.clear();
      return;
    }
    const articles = [];
    for (const name of m.names) {
      const p = m.pipelines.get(name);
      let e = mem.pipelineEls.get(name);
      if (!e || !list.contains(e.article)) e = pipelineSkeleton(name);
      mem.pipelineEls.set(name, e);
      const region = p.regions.size ? 'source region ' + Array.from(p.regions).sort().join(', ') : '';
      if (e.region.textContent !== region) e.region.textContent = region;
      sync(e.summary, pipelineSummary(p, m));
      renderChart(e.chart, p, m, now);
      e.table.classList.toggle('no-lag-seconds', !m.hasLagSeconds);
      sync(e.tbody, p.tasks.map((t) => taskRow(t, m)));
      articles.push(e.article);
    }
    for (const name of Array.from(mem.pipelineEls.keys())) {
      if (!m.pipelines.has(name)) mem.pipelineEls.delete(name);
    }
    // Keep the existing article elements (same objects), in name order.
    for (let i = 0; i < articles.length; i++) {
      if (list.children[i] !== articles[i]) list.insertBefore(articles[i], list.children[i] || null);
    }
    while (list.children.length > articles.length) list.lastElementChild.remove();
  }

  let pipelineSeq = 0;

  function pipelineSkeleton(name) {
    const hid = 'pl-' + ++pipelineSeq;
    const region = el('span', { class: 'region' });
    const summary = el('dl', { class: 'summary' });
    const chart = el('figure', { class: 'chart' });
    const tbody = el('tbody');
    const head = el('tr', null,
      el('th', { scope: 'col' }, 'Task'),
      el('th', { scope: 'col' }, 'Node'),
      el('th', { scope: 'col' }, 'State'),
      el('th', { scope: 'col', class: 'num' }, 'Partitions'),
      el('th', { scope: 'col', class: 'num' }, 'Lag (records)'),
      el('th', { scope: 'col', class: 'num lag-seconds' }, 'Lag (s)'),
      el('th', { scope: 'col', class: 'num' }, 'Replicated'),
      el('th', { scope: 'col', class: 'num' }, 'Throughput (rec/s)'),
      el('th', { scope: 'col', class: 'num' }, 'Quarantined'),
      el('th', { scope: 'col' }, 'Error'));
    const table = el('table', { class: 'data' },
      el('caption', null, 'Tasks of ' + name),
      el('thead', null, head),
      tbody);
    const article = el('article', { class: 'pipeline', 'aria-labelledby': hid },
      el('div', { class: 'pipeline-head' }, el('h3', { id: hid }, name), region),
      summary, chart, el('div', { class: 'scroll' }, table));
    return { article, region, summary, chart, table, tbody };
  }

  function fact(label, value, kind) {
    return el('div', null, el('dt', null, label), el('dd', { class: kind || null }, value));
  }

  function pipelineSummary(p, m) {
    const n = p.tasks.length;
    const out = [
      fact('Tasks', intFmt.format(n)),
      fact('Running', p.running === n ? intFmt.format(n) : p.running + ' of ' + n, p.running < n - p.unassigned ? 'warn' : null),
    ];
    if (m.ungoverned.has(p.name)) {
      out.push(fact('Governance', badge('ungoverned', 'warn', 'governance: none: records of this pipeline are never masked')));
    }
    if (p.nodes.size) out.push(fact(p.nodes.size === 1 ? 'Node' : 'Nodes', joinNodes(m, Array.from(p.nodes).sort())));
    if (p.unassigned) out.push(fact('Unassigned', intFmt.format(p.unassigned), 'warn'));
    if (p.failed) out.push(fact('Failed', intFmt.format(p.failed), 'bad'));
    if (p.figured) {
      out.push(fact('Lag', fmtInt(p.lag) + ' records'));
      if (p.lagSeconds !== null) out.push(fact('Oldest unreplicated', fmtSeconds(p.lagSeconds)));
      out.push(fact('Throughput', fmtRate(p.rate) + ' rec/s'));
      out.push(fact('Replicated', fmtInt(p.replicated)));
      out.push(fact('Quarantined', fmtInt(p.quarantined), p.quarantined > 0 ? 'warn' : null));
    }
    if (p.missing) {
      out.push(fact('Without figures', p.missing + (p.missing === 1 ? ' task' : ' tasks'), 'warn'));
    }
    if (p.pubsub && !p.figured) out.push(fact('Figures', 'state only (Pub/Sub)'));
    return out;
  }

  // whyNoFigures explains a row without figures; it names the node to ask.
  function whyNoFigures(t, m) {
    if (t.unassigned) {
      return ['Waiting for a live node' + (t.region ? ' in region ' + t.region : '') + ' (data residency: it never moves to another region)'];
    }
    const node = t.measuredBy || t.node;
    const member = m.memberByID.get(node);
    if (t.pubsub && t.measuredBy) {
      const href = node === m.self ? 'metrics' : nodeURL(member) && nodeURL(member) + 'metrics';
      return ['Pub/Sub receiver: no per-task figures; see ',
        href ? el('a', { href: href }, 'the metrics of ' + node) : 'the metrics of ' + node, ' (tributary_pubsub_*)'];
    }
    if (!node) return ['not assigned to a node'];
    if (m.unreachable.has(node)) return ['no answer from ', nodeLink(m, node), ': ' + m.unreachable.get(node)];
    if (member && !member.alive) return [nodeLink(m, node), ' is down'];
    if (!m.clusterView) return ['on ', nodeLink(m, node)];
    return [nodeLink(m, node), ' does not report it yet'];
  }

  function taskRow(t, m) {
    const cls = t.unassigned ? 'row-unassigned' : t.state === 'failed' ? 'row-failed' : null;
    const member = m.memberByID.get(t.node);
    let nodeCell;
    if (t.unassigned) {
      nodeCell = el('td', null, '—');
    } else {
      nodeCell = el('td', null, t.node ? nodeLink(m, t.node) : '—',
        t.node === m.self ? [' ', badge('this node', 'neutral')] : null,
        member && !member.alive ? [' ', badge('down', 'bad')] : null,
        m.unreachable.has(t.node) ? [' ', badge('no answer', 'warn', m.unreachable.get(t.node))] : null,
        t.measuredBy && t.measuredBy !== t.node ? el('div', { class: 'measured' }, 'figures from ', nodeLink(m, t.measuredBy)) : null);
    }

    let stateCell;
    if (t.unassigned) stateCell = el('td', null, badge('unassigned', 'warn'));
    else if (t.measuredBy) stateCell = el('td', null, badge(t.state || 'unknown', stateKind(t.state)));
    else stateCell = el('td', null, badge('assigned', 'neutral'));

    const cells = [el('th', { scope: 'row', class: 'mono' }, t.id), nodeCell, stateCell];
    const measured = m.hasLagSeconds ? 6 : 5;
    if (t.figures) {
      cells.push(
        el('td', { class: 'num' }, fmtInt(t.partitions)),
        el('td', { class: 'num' }, fmtInt(t.lag)),
        el('td', { class: 'num lag-seconds' }, fmtSeconds(t.lagSeconds)),
        el('td', { class: 'num' }, fmtInt(t.replicated)),
        el('td', { class: 'num' }, fmtRate(t.rate)),
        el('td', { class: 'num' }, fmtInt(t.quarantined)));
    } else {
      cells.push(el('td', { class: 'elsewhere', colspan: measured }, whyNoFigures(t, m)));
    }
    cells.push(el('td', { class: t.error ? 'err' : null }, t.error || ''));
    return el('tr', { class: cls }, cells);
  }
  function stateKind(state) {
    switch (state) {
      case 'running': return 'ok';
      case 'starting': return 'info';
      case 'failed': return 'bad';
      default: return 'neutral';
    }
  }

  // niceCeil rounds up to 1, 2 or 5 times a power of ten.
  function niceCeil(v) {
    if (v <= 0) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const f of [1, 2, 5, 10]) {
      if (f * p >= v) return f * p;
    }
    return 10 * p;
  }

  function renderChart(fig, p, m, now) {
    const h = mem.lagHistory.get(p.name) || [];
    if (!h.length) {
      let note;
      if (p.pubsub && p.nodes.size) {
        note = el('p', { class: 'chart-note' }, 'Pub/Sub receivers report their state only, so there is no lag to chart here; ',
          'see tributary_pubsub_outstanding_messages and tributary_pubsub_oldest_unacked_age_seconds in the metrics of ',
          joinNodes(m, Array.from(p.nodes).sort()), '.');
      } else {
        note = el('p', { class: 'chart-note' }, 'No lag figures for this pipeline yet.');
      }
      sync(fig, [note]);
      return;
    }
    const W = 720, H = 150, L = 56, R = 12, T = 10, B = 22;
    const pw = W - L - R, ph = H - T - B;
    const known = h.filter((s) => s.lag !== null);
    const peak = known.reduce((a, s) => Math.max(a, s.lag), 0);
    // At least 10, so that an idle pipeline's axis reads 0, 5, 10 records.
    const max = niceCeil(Math.max(10, peak));
    const x = (t) => L + ((t - (now - HISTORY_MS)) / HISTORY_MS) * pw;
    const y = (v) => T + ph - (v / max) * ph;
    const last = h[h.length - 1];
    const cur = last.lag;
    const label = 'Lag of ' + p.name + ' over the last 5 minutes: now ' +
      (cur === null ? 'unknown' : intFmt.format(cur) + ' records') + ', peak ' + intFmt.format(peak) + ' records.';
    const root = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': label, preserveAspectRatio: 'xMidYMid meet' });
    for (const frac of [0, 0.5, 1]) {
      const gy = y(max * frac);
      root.append(svg('line', { class: 'grid', x1: L, x2: W - R, y1: gy, y2: gy }));
      const t = svg('text', { class: 'axis-label', x: L - 6, y: gy + 4, 'text-anchor': 'end' });
      t.textContent = compactNumber(max * frac);
      root.append(t);
    }
    for (const [frac, text, anchor] of [[0, '5 min ago', 'start'], [0.5, '2.5 min', 'middle'], [1, 'now', 'end']]) {
      const t = svg('text', { class: 'axis-label', x: L + frac * pw, y: H - 6, 'text-anchor': anchor });
      t.textContent = text;
      root.append(t);
    }
    // Runs of known samples; a sample with some tasks missing makes the
    // segments next to it dashed, one with none breaks the line.
    const base = y(0).toFixed(1);
    const pt = (s) => x(s.t).toFixed(1) + ',' + y(s.lag).toFixed(1);
    let run = [];
    const runs = [];
    for (const s of h) {
      if (s.lag === null) {
        if (run.length) runs.push(run);
        run = [];
      } else {
        run.push(s);
      }
    }
    if (run.length) runs.push(run);
    for (const r of runs) {
      root.append(svg('path', { class: 'area', d: 'M' + x(r[0].t).toFixed(1) + ',' + base + ' L' + r.map(pt).join(' L') + ' L' + x(r[r.length - 1].t).toFixed(1) + ',' + base + ' Z' }));
      for (let i = 1; i < r.length; i++) {
        const partial = r[i - 1].partial || r[i].partial;
        root.append(svg('path', { class: partial ? 'line partial' : 'line', d: 'M' + pt(r[i - 1]) + ' L' + pt(r[i]) }));
      }
    }
    if (cur !== null) root.append(svg('circle', { class: last.partial ? 'dot partial' : 'dot', cx: x(last.t).toFixed(1), cy: y(cur).toFixed(1), r: 3 }));
    const n = p.figured;
    const captionText = ['Lag (records) of ' + (p.missing ? n + ' of ' + (n + p.missing) : 'the ' + n) + (n + p.missing === 1 ? ' task' : ' tasks') +
      (p.measuredOn.size ? ', measured on ' : '')];
    const caption = el('figcaption', { class: 'chart-note' }, captionText, joinNodes(m, Array.from(p.measuredOn).sort()),
      '; now ' + (cur === null ? 'unknown' : intFmt.format(cur)) + ', peak ' + intFmt.format(peak) + '.',
      h.some((s) => s.partial) ? ' Dashed: some tasks had no figures (their node did not answer, or they were unassigned).' : '');
    // Replace in place: the chart changes on every poll anyway.
    fig.replaceChildren(root, caption);
  }
  function renderMembers(m) {
    const counts = new Map();
    for (const t of m.tasks) {
      if (t.view.state !== 'unassigned' && t.view.node) counts.set(t.view.node, (counts.get(t.view.node) || 0) + 1);
    }
    const leader = (m.cluster.leader || {}).id;
    const rows = m.members.map((mb) => {
      const url = nodeURL(mb);
      const nameCell = el('th', { scope: 'row' }, mb.id,
        mb.id === leader ? [' ', badge('leader', 'info')] : null,
        mb.id === m.self ? [' ', badge('this node', 'neutral')] : null);
      return el('tr', { class: mb.alive ? null : 'row-failed' },
        nameCell,
        el('td', null, mb.region || '—'),
        el('td', { class: 'mono' }, url && mb.id !== m.self ? el('a', { href: url }, mb.http_addr) : mb.http_addr || '—'),
        el('td', { class: 'mono' }, mb.raft_addr || '—'),
        el('td', null, mb.alive ? badge('alive', 'ok') : badge('down', 'bad'),
          m.unreachable.has(mb.id) ? [' ', badge('no answer', 'warn', m.unreachable.get(mb.id))] : null),
        el('td', { class: 'num' }, intFmt.format(counts.get(mb.id) || 0)));
    });
    if (!rows.length) rows.push(el('tr', null, el('td', { colspan: 6, class: 'empty' }, 'No members known yet.')));
    sync(byId('members'), rows);
    const alive = m.members.filter((mb) => mb.alive).length;
    setText('members-caption', 'Raft members: ' + alive + ' of ' + m.members.length + ' alive');
  }

  function renderPolicy(m, now) {
    const pol = m.policy;
    const clusterPol = m.cluster.policy || {};
    const kv = [];
    const add = (k, ...v) => kv.push(el('dt', null, k), el('dd', null, ...v));
    if (pol.bundle) {
      add('Bundle', '#' + pol.bundle);
      if (pol.hash) add('Hash', el('code', { title: pol.hash }, pol.hash.slice(0, 16)));
      if (pol.source) add('Source', pol.source);
      const at = parseTime(pol.applied_at);
      if (at) add('Applied at', el('time', { datetime: at.toISOString() }, dateTimeFmt.format(at)), ' (' + fmtAgo(now - at.getTime()) + ')');
      if (pol.applied_index) add('Raft index', String(pol.applied_index));
      if (clusterPol.version && clusterPol.version !== pol.bundle) {
        add('Cluster', badge('bundle #' + clusterPol.version + ' committed; this node has not switched yet', 'warn'));
      }
    } else {
      add('Bundle', 'none active' + (clusterPol.version ? ' (cluster has #' + clusterPol.version + ')' : ''));
    }
    sync(byId('policy-bundle'), kv);

    const names = Object.keys(pol.policies || {}).sort();
    const rows = names.map((n) => el('tr', null, el('th', { scope: 'row' }, n), el('td', { class: 'num' }, String(pol.policies[n]))));
    if (!rows.length) rows.push(el('tr', null, el('td', { colspan: 2, class: 'empty' }, 'No policies.')));
    sync(byId('policy-versions'), rows);

    const errBox = [];
    if (pol.last_error) {
      const at = parseTime(pol.last_error_at);
      errBox.push(el('p', { class: 'alert bad' }, el('strong', null, 'Last policy change rejected' + (at ? ' ' + fmtAgo(now - at.getTime()) : '') + ':'),
        ' ', el('span', { class: 'mono' }, pol.last_error), ' The previous bundle stays active.'));
    }
    sync(byId('policy-error'), errBox);
  }

  function alert(kind, title, text) {
    return el('p', { class: 'alert ' + kind }, el('strong', null, title), ' ', text);
  }

  function renderAlerts(m) {
    const out = [];
    if (mem.lastError) {
      out.push(alert('bad', 'Cannot reach this node.', mem.lastError + (mem.lastOK ? ' Showing data from ' + timeFmt.format(new Date(mem.lastOK)) + '.' : '')));
    }
    if (m) {
      const c = m.cluster;
      if (c.isolated) out.push(alert('bad', 'Isolated.', 'This node has lost contact with the Raft leader and runs no tasks.'));
      else if (!c.leader || !c.leader.id) out.push(alert('bad', 'No Raft leader.', 'Tasks are not reassigned until a leader is elected.'));
      if (c.unassigned > 0) {
        out.push(alert('warn', c.unassigned === 1 ? '1 task unassigned.' : c.unassigned + ' tasks unassigned.',
          'No live node of their source region can run them; they wait (data residency).'));
      }
      const down = m.members.filter((mb) => !mb.alive).map((mb) => mb.id);
      if (down.length) out.push(alert('warn', 'Members down:', down.join(', ')));
      for (const [id, err] of Array.from(m.unreachable).sort((a, b) => a[0].localeCompare(b[0]))) {
        out.push(alert('warn', 'No answer from ' + id + ':', err + '. Its tasks are shown without figures; open its own page, or retry.'));
      }
      for (const p of m.pipelines.values()) {
        for (const t of p.tasks) {
          if (t.state === 'failed') out.push(alert('bad', 'Task ' + t.id + ' failed on ' + t.measuredBy + ':', t.error || 'no error reported'));
        }
      }
      if (m.policy.last_error) out.push(alert('warn', 'Policy change rejected.', 'See Policy bundle below.'));
    }
    sync(byId('alerts'), out);
  }

  function renderUpdated(now) {
    const u = byId('updated');
    if (!mem.lastOK) {
      u.textContent = mem.lastError ? 'No data yet' : 'Loading…';
      return;
    }
    const stale = now - mem.lastOK > STALE_MS;
    u.classList.toggle('stale', stale);
    // Dim what is shown but no longer current (the alerts stay bright).
    document.body.classList.toggle('stale', stale);
    const text = (stale ? 'Stale: last update ' : 'Updated ') + timeFmt.format(new Date(mem.lastOK));
    if (u.textContent !== text) u.textContent = text;
  }

  // ---- the token ----
  // sessionStorage may be unavailable (storage disabled): the token then lives
  // in this page only.
  let pageToken = null;
  function getToken() {
    try { return window.sessionStorage.getItem(TOKEN_KEY); } catch (e) { return pageToken; }
  }
  function setToken(tok) {
    pageToken = tok;
    try {
      if (tok === null) window.sessionStorage.removeItem(TOKEN_KEY);
      else window.sessionStorage.setItem(TOKEN_KEY, tok);
    } catch (e) { /* kept in pageToken */ }
  }

  // askToken shows the form; polling waits until it is sent.
  function askToken(rejected) {
    const form = byId('token-form');
    const msg = byId('token-error');
    msg.hidden = !rejected;
    msg.textContent = rejected ? 'The node did not accept that token.' : '';
    form.hidden = false;
    byId('token-input').focus();
  }

  byId('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const input = byId('token-input');
    const tok = input.value.trim();
    if (!tok) return;
    setToken(tok);
    input.value = '';
    byId('token-form').hidden = true;
    poll();
  });

  async function poll() {
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), FETCH_TIMEOUT_MS);
    let waitForToken = false;
    try {
      const headers = { Accept: 'application/json' };
      const tok = getToken();
      if (tok) headers.Authorization = 'Bearer ' + tok;
      const resp = await fetch(STATUS_URL, { cache: 'no-store', signal: ctrl.signal, headers: headers });
      if (resp.status === 401) {
        // No token, or one the node does not know: ask (again).
        setToken(null);
        askToken(Boolean(tok));
        waitForToken = true;
        mem.lastError = 'This node asks for a token.';
        return;
      }
      if (!resp.ok) {
        const err = new Error('v1/status answered ' + resp.status + (resp.statusText ? ' ' + resp.statusText : '') + '.');
        err.name = 'HTTPError';
        throw err;
      }
      const st = await resp.json();
      const now = Date.now();
      mem.lastOK = now;
      mem.lastError = null;
      render(st, now);
    } catch (err) {
      if (err && err.name === 'AbortError') mem.lastError = 'v1/status did not answer within ' + FETCH_TIMEOUT_MS / 1000 + ' s.';
      else if (err && err.name === 'HTTPError') mem.lastError = err.message;
      else mem.lastError = 'Fetching v1/status failed: ' + ((err && err.message) || String(err)) + '.';
      renderAlerts(mem.lastModel);
    } finally {
      clearTimeout(timer);
      renderUpdated(Date.now());
      if (!waitForToken) setTimeout(poll, POLL_MS);
    }
  }

  poll();
})();
