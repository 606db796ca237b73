// tributary status page: polls v1/status (same origin) and renders it.
//
// State kept in the browser between polls:
//   - samples of each local task's replicated count, for its throughput;
//   - the summed lag of each pipeline's local tasks, for the chart (5 minutes).
// Text from the server is always inserted as text (textContent), never as HTML.
'use strict';

(function () {
  const POLL_MS = 2000;
  const FETCH_TIMEOUT_MS = 5000;
  const HISTORY_MS = 5 * 60 * 1000;
  const RATE_WINDOW_MS = 10000;
  const STALE_MS = 3 * POLL_MS + FETCH_TIMEOUT_MS;
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
    lagHistory: new Map(), // pipeline -> [{t, lag}]
    samples: new Map(), // task id -> [{t, n}]
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

  function taskIndex(id) {
    const i = id.lastIndexOf('/');
    const n = i >= 0 ? Number(id.slice(i + 1)) : NaN;
    return isNaN(n) ? 0 : n;
  }

  // ---- browser-side measurements ----

  // rateOf records a task's replicated count and returns its records/s over
  // the last RATE_WINDOW_MS, or null until two samples exist.
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

  function recordLag(pipeline, lag, now) {
    let h = mem.lagHistory.get(pipeline);
    if (!h) {
      h = [];
      mem.lagHistory.set(pipeline, h);
    }
    h.push({ t: now, lag: lag });
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
    const members = (cluster.members || []).slice().sort((a, b) => a.id.localeCompare(b.id));
    const memberByID = new Map(members.map((m) => [m.id, m]));
    const local = new Map((st.local_tasks || []).map((t) => [t.id, t]));
    const views = st.tasks && st.tasks.length ? st.tasks : cluster.tasks || [];
    const tasks = views.map((v) => ({ view: v, local: local.get(v.id) || null }));
    // Tasks the worker runs that Raft does not list (none today; be complete).
    const listed = new Set(views.map((v) => v.id));
    for (const [id, l] of local) {
      if (!listed.has(id)) tasks.push({ view: { id: id, pipeline: l.pipeline, node: self, state: 'assigned' }, local: l });
    }

    const pipelines = new Map();
    let hasLagSeconds = false;
    for (const t of tasks) {
      const v = t.view;
      const l = t.local;
      const name = v.pipeline || (l && l.pipeline) || '(unknown)';
      let p = pipelines.get(name);
      if (!p) {
        p = { name: name, regions: new Set(), tasks: [], lag: 0, lagSeconds: null, rate: null, replicated: 0, quarantined: 0, localCount: 0, unassigned: 0, failed: 0, remote: new Set() };
        pipelines.set(name, p);
      }
      if (v.region) p.regions.add(v.region);
      const row = {
        id: v.id,
        node: v.node || '',
        unassigned: v.state === 'unassigned',
        region: v.region || '',
        here: !!l,
        state: l ? l.state : v.running_state || '',
        partitions: l ? l.partitions : v.partitions,
        lag: l ? l.lag_records : v.lag_records,
        lagSeconds: l && typeof l.lag_seconds === 'number' ? l.lag_seconds : typeof v.lag_seconds === 'number' ? v.lag_seconds : null,
        replicated: l ? l.replicated : v.replicated,
        quarantined: l ? l.quarantined : null,
        error: (l && l.error) || v.error || '',
        rate: null,
      };
      if (row.here) {
        row.rate = rateOf(row.id, row.replicated || 0, now);
        p.localCount++;
        p.lag += row.lag || 0;
        p.replicated += row.replicated || 0;
        p.quarantined += row.quarantined || 0;
        if (row.rate !== null) p.rate = (p.rate || 0) + row.rate;
        if (row.lagSeconds !== null) {
          hasLagSeconds = true;
          p.lagSeconds = Math.max(p.lagSeconds || 0, row.lagSeconds);
        }
        if (row.state === 'failed') p.failed++;
      } else if (!row.unassigned && row.node) {
        p.remote.add(row.node);
      }
      if (row.unassigned) p.unassigned++;
      p.tasks.push(row);
    }
    for (const p of pipelines.values()) {
      p.tasks.sort((a, b) => taskIndex(a.id) - taskIndex(b.id) || a.id.localeCompare(b.id));
      if (p.localCount > 0) recordLag(p.name, p.lag, now);
    }
    const names = Array.from(pipelines.keys()).sort();
    forget(mem.lagHistory, new Set(names.filter((n) => pipelines.get(n).localCount > 0)));
    forget(mem.samples, new Set(local.keys()));
    return { self, cluster, members, memberByID, pipelines, names, hasLagSeconds, policy: st.policy || {}, tasks };
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
      sync(e.summary, pipelineSummary(p));
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

  function pipelineSummary(p) {
    const running = p.tasks.filter((t) => t.here && t.state === 'running').length;
    const out = [
      fact('Tasks', intFmt.format(p.tasks.length)),
      fact('On this node', running === p.localCount ? intFmt.format(p.localCount) : running + ' of ' + p.localCount + ' running'),
    ];
    if (p.remote.size) out.push(fact('On other nodes', Array.from(p.remote).sort().join(', ')));
    if (p.unassigned) out.push(fact('Unassigned', intFmt.format(p.unassigned), 'warn'));
    if (p.failed) out.push(fact('Failed', intFmt.format(p.failed), 'bad'));
    if (p.localCount) {
      out.push(fact('Lag (this node)', fmtInt(p.lag) + ' records'));
      if (p.lagSeconds !== null) out.push(fact('Oldest unreplicated', fmtSeconds(p.lagSeconds)));
      out.push(fact('Throughput', fmtRate(p.rate) + ' rec/s'));
      out.push(fact('Replicated', fmtInt(p.replicated)));
      out.push(fact('Quarantined', fmtInt(p.quarantined), p.quarantined > 0 ? 'warn' : null));
    }
    return out;
  }

  function taskRow(t, m) {
    const cls = t.unassigned ? 'row-unassigned' : t.state === 'failed' ? 'row-failed' : null;
    const member = m.memberByID.get(t.node);
    let nodeCell;
    if (t.unassigned) {
      nodeCell = el('td', null, '—');
    } else if (t.node === m.self) {
      nodeCell = el('td', null, t.node, ' ', badge('this node', 'neutral'));
    } else {
      nodeCell = el('td', null, t.node || '—', member && !member.alive ? [' ', badge('down', 'bad')] : null);
    }

    let stateCell;
    if (t.unassigned) stateCell = el('td', null, badge('unassigned', 'warn'));
    else if (t.here) stateCell = el('td', null, badge(t.state || 'unknown', stateKind(t.state)));
    else stateCell = el('td', null, badge('assigned', 'neutral'));

    const cells = [el('th', { scope: 'row', class: 'mono' }, t.id), nodeCell, stateCell];
    const measured = m.hasLagSeconds ? 6 : 5;
    if (t.here) {
      cells.push(
        el('td', { class: 'num' }, fmtInt(t.partitions)),
        el('td', { class: 'num' }, fmtInt(t.lag)),
        el('td', { class: 'num lag-seconds' }, fmtSeconds(t.lagSeconds)),
        el('td', { class: 'num' }, fmtInt(t.replicated)),
        el('td', { class: 'num' }, fmtRate(t.rate)),
        el('td', { class: 'num' }, fmtInt(t.quarantined)));
    } else if (t.unassigned) {
      cells.push(el('td', { class: 'elsewhere', colspan: measured },
        'Waiting for a live node' + (t.region ? ' in region ' + t.region : '') + ' (data residency: it never moves to another region)'));
    } else {
      const url = nodeURL(member);
      cells.push(el('td', { class: 'elsewhere', colspan: measured },
        'on ', url ? el('a', { href: url, title: 'Status page of ' + t.node }, t.node) : t.node || 'another node'));
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
    if (p.localCount === 0) {
      const where = Array.from(p.remote).sort();
      const links = [];
      for (const id of where) {
        const url = nodeURL(m.memberByID.get(id));
        if (links.length) links.push(', ');
        links.push(url ? el('a', { href: url }, id) : id);
      }
      const note = links.length
        ? el('p', { class: 'chart-note' }, 'No task of this pipeline runs on this node; its lag chart is on ', links, '.')
        : el('p', { class: 'chart-note' }, 'No task of this pipeline runs on this node.');
      sync(fig, [note]);
      return;
    }
    const W = 720, H = 150, L = 56, R = 12, T = 10, B = 22;
    const pw = W - L - R, ph = H - T - B;
    // At least 10, so that an idle pipeline's axis reads 0, 5, 10 records.
    const max = niceCeil(Math.max(10, h.reduce((a, s) => Math.max(a, s.lag), 0)));
    const x = (t) => L + ((t - (now - HISTORY_MS)) / HISTORY_MS) * pw;
    const y = (v) => T + ph - (v / max) * ph;
    const cur = h.length ? h[h.length - 1].lag : 0;
    const peak = h.reduce((a, s) => Math.max(a, s.lag), 0);
    const label = 'Lag of ' + p.name + ' on this node over the last 5 minutes: now ' +
      intFmt.format(cur) + ' records, peak ' + intFmt.format(peak) + ' records.';
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
    if (h.length) {
      const pts = h.map((s) => x(s.t).toFixed(1) + ',' + y(s.lag).toFixed(1));
      const base = y(0).toFixed(1);
      root.append(svg('path', { class: 'area', d: 'M' + x(h[0].t).toFixed(1) + ',' + base + ' L' + pts.join(' L') + ' L' + x(h[h.length - 1].t).toFixed(1) + ',' + base + ' Z' }));
      root.append(svg('path', { class: 'line', d: 'M' + pts.join(' L') }));
      const last = h[h.length - 1];
      root.append(svg('circle', { class: 'dot', cx: x(last.t).toFixed(1), cy: y(last.lag).toFixed(1), r: 3 }));
    }
    const caption = el('figcaption', { class: 'chart-note' },
      'Lag (records) of the ' + p.localCount + (p.localCount === 1 ? ' task' : ' tasks') + ' on this node; now ' + intFmt.format(cur) + ', peak ' + intFmt.format(peak) + '.');
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
        el('td', null, mb.alive ? badge('alive', 'ok') : badge('down', 'bad')),
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
      for (const p of m.pipelines.values()) {
        for (const t of p.tasks) {
          if (t.here && t.state === 'failed') out.push(alert('bad', 'Task ' + t.id + ' failed:', t.error || 'no error reported'));
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

  async function poll() {
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), FETCH_TIMEOUT_MS);
    try {
      const resp = await fetch('v1/status', { cache: 'no-store', signal: ctrl.signal, headers: { Accept: 'application/json' } });
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
      setTimeout(poll, POLL_MS);
    }
  }

  poll();
})();
