// weir serve: the page. Plain ES2020, no framework, no build step; talks to the API in
// src/serve/API.md. Every text from the server goes in through textContent (the h() helper);
// the one exception is the flow's SVG, which the server draws and escapes itself.
'use strict';
(() => {
  if (window.__weirApp) return; // loaded twice: keep the first
  window.__weirApp = true;

  const PAGE_QUERY = new URLSearchParams(location.search);
  const TOKEN = PAGE_QUERY.get('token');
  const INSTANCE = PAGE_QUERY.get('instance');
  const STATES = ['fresh', 'stale', 'never', 'failed', 'running', 'cleared', 'tainted', 'damaged',
    'volatile', 'uncommitted'];
  const EVENTS = ['run_started', 'task_started', 'task_done', 'task_cached', 'task_failed',
    'task_skipped', 'check', 'stage_committed', 'run_finished', 'refresh'];

  const S = {
    meta: {}, // GET /api/meta
    flow: null, // the last GET /api/flow
    live: new Map(), // task id -> state from the event stream, over the flow's own
    running: null, // run id, or null
    seq: 0, // bumped on every page render; a late answer for an older page is dropped
    route: { page: 'flow', parts: [] },
    filters: { stage: 'all', state: 'all', select: '' },
    zoom: 1,
    nodeEls: new Map(), // task id -> <g class="node">
    rowEls: new Map(), // task id -> <tr> of #flow-list
    sql: '',
    catalogQuery: '',
    es: null,
  };

  // ---------------------------------------------------------------- API

  /** `path` with `params`, the page's instance and its token as query parameters. */
  function apiUrl(path, params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) {
      if (v != null && v !== '') q.set(k, v);
    }
    if (INSTANCE) q.set('instance', INSTANCE);
    if (TOKEN) q.set('token', TOKEN);
    const s = q.toString();
    return path + (s ? '?' + s : '');
  }

  class ApiError extends Error {
    constructor(status, message, help) {
      super(message);
      this.status = status;
      this.help = help || '';
    }
  }

  async function api(path, { params, method = 'GET', body } = {}) {
    const init = { method, headers: { Accept: 'application/json' } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    if (method !== 'GET' && S.meta.csrf) init.headers['X-Weir-Csrf'] = S.meta.csrf;
    let res;
    try {
      res = await fetch(apiUrl(path, params), init);
    } catch (e) {
      throw new ApiError(0, `cannot reach the weir server (${e.message})`,
        'is `weir serve` still running?');
    }
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { /* not JSON */ }
    if (!res.ok) {
      if (data && typeof data === 'object' && data.error) {
        throw new ApiError(res.status, data.error, data.help);
      }
      throw new ApiError(res.status, text.trim() || `${res.status} ${res.statusText}`, '');
    }
    return data;
  }

  // ---------------------------------------------------------------- DOM and formatting

  /** An element; attributes with null/false values are left out, `on*` are listeners, and
   * children (strings, numbers, nodes, nested arrays) go in as nodes, strings as text. */
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'style') el.style.cssText = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    return add(el, kids);
  }

  function add(el, kids) {
    for (const k of kids.flat(Infinity)) {
      if (k == null || k === false) continue;
      el.append(k instanceof Node ? k : String(k));
    }
    return el;
  }

  const $ = (id) => document.getElementById(id);
  const enc = encodeURIComponent;
  const taskHref = (id) => '#/task/' + enc(id);
  const taskLink = (id, text) => h('a', { href: taskHref(id), class: 'task-link' }, text || id);
  const runLink = (id) => (id ? h('a', { href: '#/run/' + enc(id), class: 'run-link' }, id) : '—');
  const badge = (state, id) => h('span', { class: 'state', 'data-state': state, id }, state || '—');
  const statusBadge = (s) => h('span', { class: 'status', 'data-status': s }, s || '—');
  const muted = (text) => h('span', { class: 'muted' }, text);
  const plural = (n, word) => `${fmtNum(n)} ${word}${n === 1 ? '' : 's'}`;

  function fmtNum(n) {
    return n == null ? '—' : Number(n).toLocaleString('en-US');
  }

  function fmtBytes(n) {
    if (n == null) return '—';
    if (n < 1024) return `${n} B`;
    const units = ['KB', 'MB', 'GB', 'TB', 'PB'];
    let v = n / 1024;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
  }

  function fmtMs(ms) {
    if (ms == null) return '—';
    if (ms < 1000) return `${Math.round(ms)} ms`;
    if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
    const m = Math.floor(ms / 60000);
    return m < 60 ? `${m} min ${Math.round((ms % 60000) / 1000)} s`
      : `${Math.floor(m / 60)} h ${m % 60} min`;
  }

  function fmtTime(s, ms) {
    if (!s) return '—';
    const d = new Date(s);
    if (isNaN(d)) return String(s);
    const p = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
      `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}` +
      (ms ? '.' + String(d.getMilliseconds()).padStart(3, '0') : '');
  }

  const timeEl = (s, ms) => h('time', { datetime: s || null, title: s || null }, fmtTime(s, ms));

  function table(attrs, headers, rows, empty) {
    const body = h('tbody', null, rows);
    if (!rows.length && empty) {
      body.append(h('tr', { class: 'empty' }, h('td', { colspan: headers.length }, muted(empty))));
    }
    return h('table', attrs, h('thead', null, h('tr', null, headers.map((x) => h('th', null, x)))),
      body);
  }

  const numTd = (text) => h('td', { class: 'num' }, text);

  /** Rows of string-or-null values, as in the SQL and preview answers. */
  function dataTable(columns, rows, types) {
    const head = columns.map((c, i) => h('th', null, c,
      types && types[i] ? h('div', { class: 'type' }, types[i]) : null));
    return h('table', { class: 'data' }, h('thead', null, h('tr', null, head)),
      h('tbody', null, rows.map((r) => h('tr', null, r.map((v) =>
        h('td', null, v == null ? h('span', { class: 'null' }, 'null') : v))))));
  }

  function section(title, ...kids) {
    return h('section', { class: 'panel' }, h('h3', null, title), kids);
  }

  function setView(...kids) {
    $('view').replaceChildren(...kids.flat().filter((k) => k != null && k !== false));
  }

  function showError(e) {
    clearError();
    const box = h('div', { id: 'error', class: 'error-box', role: 'alert' },
      h('button', { type: 'button', class: 'close', title: 'dismiss', onclick: clearError }, '×'),
      h('strong', { class: 'error-message' }, e.message || String(e)),
      e.status ? muted(` (HTTP ${e.status})`) : null,
      e.help ? h('div', { class: 'help' }, e.help) : null);
    $('messages').append(box);
  }

  function clearError() {
    const box = $('error');
    if (box) box.remove();
  }

  // ---------------------------------------------------------------- header, live updates

  function renderHeader() {
    const m = S.meta;
    const project = $('project');
    project.textContent = m.project || 'weir';
    project.title = [m.script, m.store, m.weir_version && `weir ${m.weir_version}`]
      .filter(Boolean).join(' · ');
    const sel = $('instance');
    const names = m.instances && m.instances.length ? m.instances : [m.instance || 'default'];
    sel.replaceChildren(...names.map((n) => h('option', { value: n }, n)));
    sel.value = m.instance || INSTANCE || names[0];
    $('action-run').hidden = !m.allow_run;
    setLive(m.running || null);
  }

  function wireHeader() {
    $('instance').addEventListener('change', (e) => {
      const q = new URLSearchParams(location.search);
      q.set('instance', e.target.value);
      location.href = location.pathname + '?' + q.toString() + location.hash;
    });
    $('action-run').addEventListener('click', async (e) => {
      const btn = e.currentTarget;
      const out = $('action-run-result');
      btn.disabled = true;
      out.className = 'muted';
      out.textContent = 'starting…';
      try {
        const d = await api('/api/actions/run', { method: 'POST', body: { select: [], force: false } });
        out.textContent = d && d.started ? 'run started' : JSON.stringify(d);
      } catch (err) {
        out.className = 'error-text';
        out.textContent = err.message + (err.help ? ` (${err.help})` : '');
      } finally {
        btn.disabled = false;
        setTimeout(() => { if (out.textContent !== 'starting…') out.textContent = ''; }, 10000);
      }
    });
  }

  function setLive(runId) {
    S.running = runId || null;
    const live = $('live');
    live.textContent = S.running ? `running ${S.running}` : 'idle';
    live.setAttribute('data-live', S.running ? 'running' : 'idle');
  }

  function setConn(state) {
    const c = $('conn');
    c.setAttribute('data-conn', state);
    c.title = `live updates: ${state}`;
  }

  /** The one EventSource of the page, whatever page is shown. */
  function connectEvents() {
    if (S.es || typeof EventSource === 'undefined') return;
    const es = new EventSource(apiUrl('/api/events'));
    S.es = es;
    es.onopen = () => setConn('connected');
    es.onerror = () => setConn(es.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting');
    es.onmessage = (e) => onEvent(e.data, null);
    for (const type of EVENTS) es.addEventListener(type, (e) => onEvent(e.data, type));
  }

  function onEvent(raw, type) {
    let d = {};
    try { d = JSON.parse(raw) || {}; } catch (_) { /* keep {} */ }
    switch (type || d.event) {
      case 'run_started': setLive(d.run || 'a run'); break;
      case 'task_started': setTaskState(d.task, 'running'); break;
      case 'task_done': case 'task_cached': setTaskState(d.task, 'fresh'); break;
      case 'task_failed': setTaskState(d.task, 'failed'); break;
      case 'run_finished': setLive(null); break;
      case 'refresh': onRefresh(); break;
      default: break;
    }
  }

  /** A task's state from the event stream: kept, and painted where it is shown. */
  function setTaskState(id, state) {
    if (!id) return;
    S.live.set(id, state);
    if (S.route.page === 'flow' && S.flow) {
      paintTask(id, state);
      applyFilters();
      // When each state was shown, for measuring the delay behind the run (benchmarks.md).
      (window.weirShown = window.weirShown || {})[`${id} ${state}`] = Date.now();
    }
    const ts = $('task-state');
    if (S.route.page === 'task' && ts && ts.getAttribute('data-task') === id) {
      ts.setAttribute('data-state', state);
      ts.textContent = state;
    }
  }

  async function onRefresh() {
    S.live.clear();
    api('/api/meta').then((m) => { S.meta = m || {}; setLive(S.meta.running); }).catch(() => {});
    const page = S.route.page;
    if (page === 'flow') await loadFlow(S.seq);
    else if (['runs', 'run', 'task', 'compare'].includes(page)) await softRerender();
  }

  /** Renders the page again in place, keeping the scroll position and an action's result. */
  async function softRerender() {
    const y = window.scrollY;
    const result = $('action-result');
    const kept = result ? [...result.childNodes] : [];
    await route();
    const again = $('action-result');
    if (again && kept.length) again.replaceChildren(...kept);
    window.scrollTo(0, y);
  }

  // ---------------------------------------------------------------- routing

  function parseHash() {
    const raw = location.hash.replace(/^#\/?/, '');
    const parts = raw ? raw.split('/').map((p) => { try { return decodeURIComponent(p); } catch (_) { return p; } }) : [];
    return { page: parts[0] || 'flow', parts };
  }

  async function route() {
    const my = ++S.seq;
    clearError();
    const r = parseHash();
    S.route = r;
    const section = { task: 'flow', run: 'runs', compare: 'runs' }[r.page] || r.page;
    for (const a of document.querySelectorAll('#nav a')) {
      a.classList.toggle('active', a.id === 'nav-' + section);
    }
    document.title = `${r.page} · ${S.meta.project || 'weir'} · weir`;
    if (r.page !== 'flow') { S.nodeEls.clear(); S.rowEls.clear(); }
    try {
      switch (r.page) {
        case 'flow': await pageFlow(my); break;
        case 'task': await pageTask(my, r.parts.slice(1).join('/')); break;
        case 'runs': await pageRuns(my); break;
        case 'run': await pageRun(my, r.parts[1] || 'last'); break;
        case 'compare': await pageCompare(my, r.parts[1], r.parts[2]); break;
        case 'catalog': await pageCatalog(my); break;
        case 'sql': pageSql(); break;
        default: throw new ApiError(0, `there is no page ${location.hash}`, 'see the links above');
      }
    } catch (e) {
      if (my !== S.seq) return;
      showError(e);
      setView(h('p', { class: 'muted' }, 'Nothing to show.'));
    }
  }

  /** While a page waits for its data, say so (only when the view holds another page). */
  function loading(page) {
    if ($('view').getAttribute('data-page') !== page) {
      setView(h('p', { class: 'muted' }, 'Loading…'));
    }
    $('view').setAttribute('data-page', page);
  }

  // ---------------------------------------------------------------- flow

  async function pageFlow(my) {
    $('view').setAttribute('data-page', 'flow');
    const f = S.filters;
    const zoomBtn = (id, title, text, fn) => h('button', { id, type: 'button', title, onclick: fn }, text);
    setView(
      h('div', { class: 'toolbar' },
        h('select', { id: 'filter-stage', title: 'show one stage', onchange: (e) => { f.stage = e.target.value; applyFilters(); } }),
        h('select', { id: 'filter-state', title: 'show one state', onchange: (e) => { f.state = e.target.value; applyFilters(); } }),
        h('input', {
          id: 'filter-select', type: 'text', value: f.select, spellcheck: 'false',
          placeholder: 'select: marts.q01+  stage:prep  (Enter)',
          title: "weir's --select syntax; Enter to apply, empty for all",
          onkeydown: (e) => { if (e.key === 'Enter') { f.select = e.target.value.trim(); loadFlow(S.seq); } },
        }),
        h('span', { class: 'spacer' }),
        h('span', { class: 'zoom' },
          zoomBtn('zoom-out', 'zoom out', '−', () => setZoom(S.zoom / 1.25)),
          zoomBtn('zoom-reset', 'actual size', '100%', () => setZoom(1)),
          zoomBtn('zoom-in', 'zoom in', '+', () => setZoom(S.zoom * 1.25)),
          zoomBtn('zoom-fit', 'fit the width', 'fit', fitZoom))),
      h('div', { id: 'flow-legend', class: 'legend' }),
      h('div', {
        id: 'flow', class: 'flow', tabindex: '-1',
        onclick: (e) => openNode(e.target),
        onkeydown: (e) => { if (e.key === 'Enter') openNode(e.target); },
        onwheel: (e) => {
          if (!e.ctrlKey) return;
          e.preventDefault();
          setZoom(S.zoom * (e.deltaY < 0 ? 1.1 : 1 / 1.1));
        },
      }),
      h('div', { id: 'flow-summary', class: 'muted' }),
      h('table', { id: 'flow-list', class: 'list' },
        h('thead', null, h('tr', null, ['task', 'stage', 'kind', 'state', 'detail'].map((x) => h('th', null, x)))),
        h('tbody')));
    await loadFlow(my);
  }

  async function loadFlow(my) {
    let flow;
    try {
      flow = await api('/api/flow', { params: { select: S.filters.select } });
    } catch (e) {
      if (my === S.seq) showError(e);
      return;
    }
    if (my !== S.seq || S.route.page !== 'flow') return;
    clearError();
    S.flow = flow;
    drawFlow();
    // Milliseconds from the page's start to the flow drawn, for measuring (benchmarks.md).
    if (window.weirFlowDrawn === undefined) window.weirFlowDrawn = performance.now();
  }

  function openNode(target) {
    const g = target.closest && target.closest('g.node');
    const id = g && g.getAttribute('data-task');
    if (id) location.hash = taskHref(id);
  }

  function drawFlow() {
    const flow = S.flow;
    const tasks = flow.tasks || [];
    const f = S.filters;
    const stages = flow.stages || [...new Set(tasks.map((t) => t.stage))];
    if (f.stage !== 'all' && !stages.includes(f.stage)) f.stage = 'all';
    const stageSel = $('filter-stage');
    stageSel.replaceChildren(h('option', { value: 'all' }, 'all stages'),
      ...stages.map((s) => h('option', { value: s }, s)));
    stageSel.value = f.stage;

    const box = $('flow');
    box.innerHTML = flow.svg || ''; // drawn and escaped by the server
    S.nodeEls.clear();
    for (const t of tasks) {
      const g = document.getElementById('node-' + t.id) || document.getElementById(t.id);
      if (!g || !box.contains(g)) continue;
      g.setAttribute('data-task', t.id);
      g.setAttribute('tabindex', '0');
      g.setAttribute('role', 'link');
      S.nodeEls.set(t.id, g);
    }
    if (!flow.svg) box.append(h('p', { class: 'muted' }, 'No drawing for this flow.'));
    applyZoom();

    S.rowEls.clear();
    const rows = tasks.map((t) => {
      const tr = h('tr', { 'data-task': t.id },
        h('td', null, taskLink(t.id)), h('td', null, t.stage), h('td', null, t.kind),
        h('td', null, badge(t.state)), h('td', { class: 'detail' }, t.detail || ''));
      S.rowEls.set(t.id, tr);
      return tr;
    });
    const body = document.querySelector('#flow-list tbody');
    body.replaceChildren(...rows);
    if (!rows.length) {
      body.append(h('tr', { class: 'empty' }, h('td', { colspan: 5 }, muted('No tasks match.'))));
    }
    for (const t of tasks) paintTask(t.id, effState(t));
    applyFilters();
  }

  function effState(t) {
    return S.live.get(t.id) || t.state;
  }

  function paintTask(id, state) {
    const g = S.nodeEls.get(id);
    if (g) {
      g.setAttribute('data-state', state);
      const title = g.querySelector('title');
      const t = S.flow && S.flow.tasks.find((x) => x.id === id);
      if (title) title.textContent = `${id}: ${state}${t && t.detail && state === t.state ? ` (${t.detail})` : ''}`;
    }
    const tr = S.rowEls.get(id);
    if (tr) {
      tr.setAttribute('data-state', state);
      const b = tr.querySelector('.state');
      b.setAttribute('data-state', state);
      b.textContent = state;
    }
  }

  function applyFilters() {
    if (!S.flow || !$('filter-state')) return;
    const { stage, state } = S.filters;
    const tasks = S.flow.tasks || [];
    const counts = {};
    let shown = 0;
    for (const t of tasks) {
      const st = effState(t);
      counts[st] = (counts[st] || 0) + 1;
      const ok = (stage === 'all' || t.stage === stage) && (state === 'all' || st === state);
      if (ok) shown++;
      const g = S.nodeEls.get(t.id);
      if (g) g.classList.toggle('dimmed', !ok);
      const tr = S.rowEls.get(t.id);
      if (tr) { tr.classList.toggle('dimmed', !ok); tr.hidden = !ok; }
    }
    for (const s of S.flow.stages || []) {
      const c = document.getElementById('stage-' + s);
      if (c) c.classList.toggle('dimmed', stage !== 'all' && s !== stage);
    }
    const known = STATES.concat(Object.keys(counts).filter((s) => !STATES.includes(s)));
    const sel = $('filter-state');
    sel.replaceChildren(h('option', { value: 'all' }, 'all states'),
      ...known.map((s) => h('option', { value: s }, counts[s] ? `${s} (${counts[s]})` : s)));
    sel.value = state;
    $('flow-legend').replaceChildren(...known.filter((s) => counts[s]).map((s) =>
      h('button', {
        type: 'button', class: 'state' + (state === s ? ' active' : ''), 'data-state': s,
        title: state === s ? 'show all states' : `show only ${s} tasks`,
        onclick: () => { S.filters.state = state === s ? 'all' : s; applyFilters(); },
      }, `${s} ${counts[s]}`)));
    $('flow-summary').textContent = shown === tasks.length ? plural(tasks.length, 'task')
      : `${fmtNum(shown)} of ${plural(tasks.length, 'task')} shown`;
  }

  function setZoom(z) {
    S.zoom = Math.min(5, Math.max(0.05, z));
    applyZoom();
  }

  function svgSize(svg) {
    let w = parseFloat(svg.getAttribute('width'));
    let ht = parseFloat(svg.getAttribute('height'));
    const vb = svg.viewBox && svg.viewBox.baseVal;
    if (!(w > 0 && ht > 0) && vb && vb.width) { w = vb.width; ht = vb.height; }
    return w > 0 && ht > 0 ? [w, ht] : null;
  }

  function applyZoom() {
    const svg = document.querySelector('#flow > svg');
    const label = $('zoom-reset');
    if (label) label.textContent = `${Math.round(S.zoom * 100)}%`;
    if (!svg) return;
    const size = svgSize(svg);
    if (!size) return;
    if (!svg.getAttribute('viewBox')) svg.setAttribute('viewBox', `0 0 ${size[0]} ${size[1]}`);
    svg.style.width = `${size[0] * S.zoom}px`;
    svg.style.height = `${size[1] * S.zoom}px`;
  }

  function fitZoom() {
    const svg = document.querySelector('#flow > svg');
    const size = svg && svgSize(svg);
    if (size) setZoom(($('flow').clientWidth - 4) / size[0]);
  }

  // ---------------------------------------------------------------- task

  async function pageTask(my, id) {
    loading('task');
    const t = await api('/api/task/' + enc(id));
    if (my !== S.seq) return;
    document.title = `${t.id} · ${S.meta.project || 'weir'} · weir`;
    const linkList = (id2, ids) => h('ul', { id: id2, class: 'links' },
      (ids || []).length ? ids.map((x) => h('li', null, taskLink(x))) : h('li', null, muted('none')));
    const code = t.code || {};
    const where = code.file ? `${code.file}${code.line ? ':' + code.line : ''}` : '';
    const committed = t.committed;
    setView(
      h('div', { class: 'page-head' },
        h('h2', { id: 'task-title' }, t.id),
        h('span', { id: 'task-state', class: 'state', 'data-state': t.state, 'data-task': t.id }, t.state),
        h('span', { class: 'chip', title: 'kind' }, t.kind),
        h('a', { class: 'chip', href: '#/flow', title: 'stage', onclick: () => { S.filters.stage = t.stage; } }, t.stage)),
      t.description ? h('p', { class: 'desc' }, t.description) : null,
      S.meta.allow_run ? taskActions(t.id) : null,
      h('div', { class: 'grid' },
        section('Why', h('table', { id: 'task-why', class: 'kv' },
          h('thead', null, h('tr', null, h('th', null, 'part'), h('th', null, 'now'), h('th', null, 'last built'))),
          h('tbody', null, (t.parts || []).map((p) =>
            h('tr', { class: p.changed ? 'changed' : null, 'data-part': p.part },
              h('td', null, p.part, p.changed ? h('span', { class: 'flag' }, 'changed') : null),
              h('td', { class: 'mono' }, p.now == null ? '—' : p.now),
              h('td', { class: 'mono' }, p.then == null ? '—' : p.then))))),
          h('p', { id: 'task-detail', class: 'detail' }, t.detail || (t.state === 'fresh' ? 'Up to date.' : '')),
          h('div', { id: 'task-keys', class: 'muted small' },
            t.key ? ['key ', h('code', null, t.key)] : null,
            committed ? [' · committed ', h('code', null, committed.key), ' by ', runLink(committed.run_id)]
              : ' · nothing committed')),
        section('Lineage',
          h('h4', null, 'inputs'), linkList('task-inputs', t.inputs),
          h('h4', null, 'outputs'), linkList('task-outputs', t.outputs),
          h('h4', null, 'downstream'), linkList('task-downstream', t.downstream))),
      section('Code',
        h('div', { id: 'task-code-loc', class: 'muted small' }, where, code.language ? ` (${code.language})` : ''),
        h('pre', { id: 'task-code', class: 'code', 'data-language': code.language || null }, code.text || '')),
      section('Checks', table({ id: 'task-checks', class: 'list' }, ['check', 'result', 'detail', 'run'],
        (t.checks || []).map((c) => h('tr', { class: c.ok ? 'ok' : 'failed' },
          h('td', { class: 'mono' }, c.name), h('td', null, statusBadge(c.ok ? 'ok' : 'failed')),
          h('td', null, c.detail || ''), h('td', null, runLink(c.run_id)))), 'No checks.')),
      section('Builds', table({ id: 'task-builds', class: 'list' },
        ['run', 'status', 'rows', 'size', 'time', 'spill', 'started', 'error'],
        (t.builds || []).map((b) => h('tr', { 'data-run': b.run_id, 'data-status': b.status },
          h('td', null, runLink(b.run_id)), h('td', null, statusBadge(b.status)),
          numTd(fmtNum(b.rows)), numTd(fmtBytes(b.bytes)), numTd(fmtMs(b.duration_ms)),
          numTd(b.spilled_bytes ? fmtBytes(b.spilled_bytes) : '—'), h('td', null, timeEl(b.started_at)),
          h('td', { class: 'error-text clip', title: b.error || null }, b.error || ''))), 'Never built.')),
      section('Logs (last build)', table({ id: 'task-logs', class: 'list logs' }, ['time', 'level', 'message'],
        (t.logs || []).map((l) => h('tr', { 'data-level': l.level },
          h('td', null, timeEl(l.ts, true)), h('td', null, l.level), h('td', { class: 'mono' }, l.message))), 'No logs.')),
      section('Schema', table({ id: 'task-schema', class: 'list' }, ['column', 'type', 'nullable'],
        (t.schema || []).map((c) => h('tr', null, h('td', { class: 'mono' }, c.name),
          h('td', { class: 'mono' }, c.type), h('td', null, c.nullable ? 'yes' : 'no'))),
        t.schema ? 'No columns.' : 'Nothing committed.')),
      section('Preview', h('div', { id: 'task-preview', class: 'table-wrap' },
        t.preview ? [dataTable(t.preview.columns || [], t.preview.rows || []),
          h('div', { class: 'muted small' }, `${plural((t.preview.rows || []).length, 'row')}`,
            t.preview.truncated ? ' (truncated)' : '')]
          : muted('Nothing committed.'))));
  }

  function taskActions(id) {
    const out = h('div', { id: 'action-result', class: 'action-result', 'aria-live': 'polite' });
    const run = h('button', { id: 'action-run-task', type: 'button', title: `weir run --select ${id} --force` },
      'Run this task');
    const clear = h('button', { id: 'action-clear', type: 'button', class: 'danger',
      title: 'mark it and its downstream to be rebuilt by the next run (weir clear --downstream)' }, 'Clear with downstream');
    run.addEventListener('click', () => doAction(run, out, '/api/actions/run', { select: [id], force: true },
      (d) => (d && d.started ? `run started for ${id}` : 'not started')));
    clear.addEventListener('click', async () => {
      const d = await doAction(clear, out, '/api/actions/clear', { task: id, downstream: true },
        (x) => `cleared ${((x && x.cleared) || []).join(', ') || 'nothing'}`);
      if (d) {
        for (const c of d.cleared || []) S.live.delete(c);
        await softRerender();
      }
    });
    return h('div', { class: 'actions' }, run, clear, out);
  }

  async function doAction(btn, out, path, body, describe) {
    btn.disabled = true;
    out.removeAttribute('data-ok');
    out.replaceChildren(muted('working…'));
    try {
      const d = await api(path, { method: 'POST', body });
      out.setAttribute('data-ok', 'true');
      out.replaceChildren(h('span', null, describe(d)), ' ', h('code', { class: 'muted' }, JSON.stringify(d)));
      return d || {};
    } catch (e) {
      out.setAttribute('data-ok', 'false');
      out.replaceChildren(h('strong', { class: 'error-text' }, e.message),
        e.status ? muted(` (HTTP ${e.status})`) : null, e.help ? h('div', { class: 'help' }, e.help) : null);
      return null;
    } finally {
      btn.disabled = false;
    }
  }

  // ---------------------------------------------------------------- runs, run, compare

  const runStatus = (r) => (r.ok === true ? 'ok' : r.ok === false ? 'failed' : 'running');

  async function pageRuns(my) {
    loading('runs');
    const runs = (await api('/api/runs')) || [];
    if (my !== S.seq) return;
    const go = h('button', { id: 'compare-go', type: 'button', disabled: true }, 'Compare selected');
    const picked = () => [...document.querySelectorAll('#runs input.compare-pick:checked')].map((c) => c.value);
    const update = () => {
      const n = picked().length;
      go.disabled = n !== 2;
      go.textContent = n === 2 ? 'Compare the two runs' : `Compare selected (${n}/2)`;
    };
    go.addEventListener('click', () => {
      const p = picked(); // newest first: the older run is a
      if (p.length === 2) location.hash = `#/compare/${enc(p[1])}/${enc(p[0])}`;
    });
    const rows = runs.map((r, i) => h('tr', { 'data-run': r.run_id, 'data-status': runStatus(r) },
      h('td', null, h('input', { type: 'checkbox', class: 'compare-pick', value: r.run_id, title: 'pick two runs to compare', onchange: update })),
      h('td', { class: 'mono' }, runLink(r.run_id)),
      h('td', null, timeEl(r.started_at)),
      numTd(fmtMs(r.duration_ms)),
      h('td', null, statusBadge(runStatus(r))),
      numTd(fmtNum(r.ran)), numTd(fmtNum(r.cached)),
      h('td', { class: 'num' + (r.failed ? ' error-text' : '') }, fmtNum(r.failed)), numTd(fmtNum(r.skipped)),
      h('td', null, [r.user, r.host].filter(Boolean).join('@')),
      h('td', null, runs[i + 1] ? h('a', { class: 'compare-prev', href: `#/compare/${enc(runs[i + 1].run_id)}/${enc(r.run_id)}` }, 'vs previous') : '')));
    setView(
      h('div', { class: 'page-head' }, h('h2', null, 'Runs'), muted(plural(runs.length, 'run')),
        h('span', { class: 'spacer' }), go),
      table({ id: 'runs', class: 'list' },
        ['', 'run', 'started', 'duration', 'result', 'ran', 'cached', 'failed', 'skipped', 'by', ''],
        rows, 'No runs yet.'));
    update();
  }

  async function pageRun(my, id) {
    loading('run');
    const r = await api('/api/runs/' + enc(id));
    if (my !== S.seq) return;
    const tasks = r.tasks || [];
    const counts = {};
    for (const t of tasks) counts[t.status] = (counts[t.status] || 0) + 1;
    const failures = tasks.filter((t) => t.status === 'failed' || t.error);
    setView(
      h('div', { class: 'page-head' }, h('h2', { id: 'run-title' }, 'Run ', h('span', { class: 'mono' }, r.run_id)),
        statusBadge(runStatus(r))),
      h('div', { id: 'run-summary', class: 'summary' },
        h('span', null, 'started ', timeEl(r.started_at)),
        h('span', null, 'ended ', timeEl(r.ended_at)),
        h('span', null, 'took ', h('strong', null, fmtMs(r.duration_ms))),
        h('span', null, plural(tasks.length, 'task'), ': ',
          Object.entries(counts).map(([s, n]) => h('span', { class: 'status', 'data-status': s }, `${n} ${s}`))),
        (r.stages || []).length ? h('span', null, 'stages: ', r.stages.map((s) =>
          h('span', { class: 'status', 'data-status': s.status, title: s.status }, `${s.stage} ${s.status}`))) : null),
      section('Timeline', timeline(r)),
      section(`Failures (${failures.length})`, h('div', { id: 'run-failures' },
        failures.length ? failures.map((t) => h('div', { class: 'failure', 'data-task': t.task },
          h('h4', null, taskLink(t.task), ' ', statusBadge(t.status)),
          h('pre', { class: 'error' }, t.error || '(no error text)')))
          : muted('No failures.'))),
      section('Tasks', table({ id: 'run-tasks', class: 'list' },
        ['task', 'status', 'why', 'rows', 'size', 'time', 'spill'],
        tasks.map((t) => h('tr', { 'data-task': t.task, 'data-status': t.status },
          h('td', null, taskLink(t.task)), h('td', null, statusBadge(t.status)),
          h('td', { class: 'detail' }, (t.reason || []).join('; ')),
          numTd(fmtNum(t.rows)), numTd(fmtBytes(t.bytes)),
          numTd(t.start_ms != null && t.end_ms != null ? fmtMs(t.end_ms - t.start_ms) : '—'),
          numTd(t.spilled_bytes ? fmtBytes(t.spilled_bytes) : '—'))), 'No tasks.')),
      section('Events', table({ id: 'run-events', class: 'list' }, ['time', 'event', 'task', 'detail'],
        (r.events || []).map((e) => {
          const rest = Object.fromEntries(Object.entries(e).filter(([k]) => !['ts', 'run', 'event', 'task'].includes(k)));
          return h('tr', { 'data-event': e.event },
            h('td', null, timeEl(e.ts, true)), h('td', null, e.event), h('td', null, e.task ? taskLink(e.task) : ''),
            h('td', { class: 'mono small' }, Object.keys(rest).length ? JSON.stringify(rest) : ''));
        }), 'No events.')));
  }

  function timeline(r) {
    const ran = (r.tasks || []).filter((t) => t.start_ms != null && t.end_ms != null);
    const box = h('div', { id: 'run-timeline', class: 'timeline' });
    if (!ran.length) return add(box, [muted('No task ran in this run (all cached or skipped).')]);
    const total = Math.max(r.duration_ms || 0, ...ran.map((t) => t.end_ms), 1);
    const lanes = new Map();
    for (const t of ran) {
      const lane = t.lane == null ? 0 : t.lane;
      if (!lanes.has(lane)) lanes.set(lane, []);
      lanes.get(lane).push(t);
    }
    const pct = (ms) => (100 * ms / total).toFixed(3);
    box.append(h('div', { class: 'axis' }, h('span', { class: 'lane-label' }),
      h('div', { class: 'lane-track' }, [0, 0.25, 0.5, 0.75, 1].map((f) =>
        h('span', { class: 'tick', style: `left:${f * 100}%` }, fmtMs(Math.round(total * f)))))));
    for (const lane of [...lanes.keys()].sort((a, b) => a - b)) {
      box.append(h('div', { class: 'lane', 'data-lane': lane },
        h('span', { class: 'lane-label' }, lane),
        h('div', { class: 'lane-track' }, lanes.get(lane).map((t) => h('div', {
          class: 'bar', 'data-task': t.task, 'data-status': t.status,
          style: `left:${pct(t.start_ms)}%;width:max(2px, ${pct(t.end_ms - t.start_ms)}%)`,
          title: `${t.task}\n${t.status} · ${fmtMs(t.end_ms - t.start_ms)} (${fmtMs(t.start_ms)} → ${fmtMs(t.end_ms)})\n` +
            `${fmtNum(t.rows)} rows · ${fmtBytes(t.bytes)}`,
          onclick: () => { location.hash = taskHref(t.task); },
        }, h('span', { class: 'bar-label' }, t.task))))));
    }
    return box;
  }

  async function pageCompare(my, a, b) {
    loading('compare');
    if (!a || !b) throw new ApiError(0, 'compare needs two runs: #/compare/<run a>/<run b>', 'pick two runs on the Runs page');
    const c = await api('/api/compare', { params: { a, b } });
    if (my !== S.seq) return;
    const tasks = c.tasks || [];
    const changed = tasks.filter((t) => t.changed).length;
    const ra = c.a || {};
    const rb = c.b || {};
    const line = (label, f) => h('tr', null, h('th', null, label), h('td', null, f(ra)), h('td', null, f(rb)));
    const only = h('input', { id: 'compare-only-changed', type: 'checkbox' });
    only.addEventListener('change', () => {
      for (const tr of document.querySelectorAll('#compare tbody tr[data-task]')) {
        tr.hidden = only.checked && !tr.classList.contains('changed');
      }
    });
    setView(
      h('div', { class: 'page-head' }, h('h2', null, 'Compare runs')),
      h('table', { id: 'compare-summary', class: 'kv' },
        h('thead', null, h('tr', null, h('th'), h('th', null, 'a'), h('th', null, 'b'))),
        h('tbody', null,
          line('run', (r) => runLink(r.run_id)), line('started', (r) => timeEl(r.started_at)),
          line('duration', (r) => fmtMs(r.duration_ms)), line('result', (r) => statusBadge(runStatus(r))),
          line('ran / cached / failed / skipped', (r) => [r.ran, r.cached, r.failed, r.skipped].map(fmtNum).join(' / ')))),
      h('div', { class: 'toolbar' }, h('label', null, only, ' only changed'),
        muted(`${plural(tasks.length, 'task')}, ${fmtNum(changed)} changed`)),
      table({ id: 'compare', class: 'list' }, ['task', 'a', 'b', 'a build', 'b build', ''],
        tasks.map((t) => h('tr', { 'data-task': t.task, class: t.changed ? 'changed' : null },
          h('td', null, taskLink(t.task)), h('td', null, statusBadge(t.a)), h('td', null, statusBadge(t.b)),
          h('td', { class: 'mono small' }, t.a_build || '—'), h('td', { class: 'mono small' }, t.b_build || '—'),
          h('td', null, t.changed ? h('span', { class: 'flag' }, 'changed') : ''))), 'No tasks.'));
  }

  // ---------------------------------------------------------------- catalog

  async function pageCatalog(my) {
    loading('catalog');
    const cat = (await api('/api/catalog')) || [];
    if (my !== S.seq) return;
    const hay = new Map();
    const cards = cat.map((t) => {
      const card = tableCard(t);
      hay.set(card, [t.table, t.description || '', ...(t.columns || []).map((c) => c.name)].join('\n').toLowerCase());
      return card;
    });
    const count = h('span', { id: 'catalog-count', class: 'muted' });
    const search = h('input', {
      id: 'catalog-search', type: 'search', value: S.catalogQuery, spellcheck: 'false',
      placeholder: 'search tables, descriptions, columns',
    });
    const filter = () => {
      S.catalogQuery = search.value;
      const terms = search.value.toLowerCase().split(/\s+/).filter(Boolean);
      let shown = 0;
      for (const card of cards) {
        const ok = terms.every((x) => hay.get(card).includes(x));
        card.hidden = !ok;
        if (ok) shown++;
      }
      count.textContent = shown === cards.length ? plural(cards.length, 'table') : `${fmtNum(shown)} of ${plural(cards.length, 'table')}`;
    };
    search.addEventListener('input', filter);
    setView(h('div', { class: 'page-head' }, h('h2', null, 'Catalog'), search, count),
      h('div', { id: 'catalog-list', class: 'cards' }, cards.length ? cards : muted('No tables.')));
    filter();
  }

  function tableCard(t) {
    const links = (label, ids) => h('div', { class: 'card-links' }, muted(label + ' '),
      (ids || []).length ? ids.map((x, i) => [i ? ', ' : '', taskLink(x)]) : muted('none'));
    return h('div', { class: 'table-card', 'data-table': t.table },
      h('div', { class: 'card-head' }, h('h3', null, taskLink(t.task || t.table, t.table)),
        h('span', { class: 'chip' }, t.stage)),
      h('p', { class: 'desc' + (t.description ? '' : ' muted') }, t.description || 'No description.'),
      h('div', { class: 'card-meta' },
        t.rows == null ? muted('not built') : [h('strong', null, fmtNum(t.rows)), ' rows · ', fmtBytes(t.bytes)],
        t.built_run ? [' · built ', timeEl(t.built_at), ' by ', runLink(t.built_run)] : null),
      (t.primary_key || []).length ? h('div', { class: 'card-pk' }, muted('primary key '),
        h('code', null, t.primary_key.join(', '))) : null,
      (t.checks || []).length ? h('div', { class: 'card-checks' }, muted('checks '),
        t.checks.map((c) => h('code', { class: 'chip' }, c))) : null,
      h('table', { class: 'cols' }, h('tbody', null, (t.columns || []).map((c) =>
        h('tr', null, h('td', { class: 'mono' }, c.name), h('td', { class: 'mono muted' }, c.type),
          h('td', { class: 'muted small' }, c.nullable ? 'null' : 'not null'))))),
      links('upstream', t.upstream), links('downstream', t.downstream));
  }

  // ---------------------------------------------------------------- SQL

  function pageSql() {
    $('view').setAttribute('data-page', 'sql');
    const ta = h('textarea', {
      id: 'sql-query', rows: 8, spellcheck: 'false',
      placeholder: 'SELECT * FROM stage.table LIMIT 10        (Ctrl+Enter to run)',
    });
    ta.value = S.sql;
    const csv = h('a', { id: 'sql-csv', class: 'button', download: 'query.csv', title: 'the whole result as CSV (at most 1,000,000 rows)' }, 'Download CSV');
    const update = () => {
      S.sql = ta.value;
      csv.href = apiUrl('/api/sql.csv', { query: ta.value.trim() });
      csv.classList.toggle('disabled', !ta.value.trim());
    };
    const btn = h('button', { id: 'sql-run', type: 'button', class: 'primary', title: 'Ctrl+Enter' }, 'Run');
    const out = h('div', { id: 'sql-out' });
    const run = async () => {
      const query = ta.value.trim();
      if (!query || btn.disabled) return;
      btn.disabled = true;
      out.replaceChildren(muted('running…'));
      try {
        const r = await api('/api/sql', { method: 'POST', body: { query, limit: 1000 } });
        const rows = r.rows || [];
        out.replaceChildren(h('div', { id: 'sql-result' },
          h('div', { class: 'table-wrap' }, dataTable(r.columns || [], rows, r.types)),
          h('div', { id: 'sql-footer', class: 'muted small' },
            `${rows.length} rows${r.truncated ? ' (truncated)' : ''} · ${fmtMs(r.elapsed_ms)}`)));
      } catch (e) {
        out.replaceChildren(h('pre', { id: 'sql-error', class: 'error' }, e.message + (e.help ? '\n\n' + e.help : '')));
      } finally {
        btn.disabled = false;
      }
    };
    ta.addEventListener('input', update);
    ta.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); run(); }
    });
    btn.addEventListener('click', run);
    update();
    setView(h('div', { class: 'page-head' }, h('h2', null, 'SQL'),
      muted('read-only queries over the committed tables, e.g. SELECT * FROM stage.table')),
    ta, h('div', { class: 'toolbar' }, btn, csv, muted('Ctrl+Enter runs; the page shows at most 1,000 rows')), out);
    ta.focus();
  }

  // ---------------------------------------------------------------- start

  async function start() {
    wireHeader();
    try {
      S.meta = (await api('/api/meta')) || {};
    } catch (e) {
      S.meta = {};
      showError(e);
    }
    renderHeader();
    connectEvents();
    window.addEventListener('hashchange', route);
    await route();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
