// Component pages: /c/{dataset}/{location}/{layer}/{index}[?prompt=…]
// top, random and per-quantile records as token heatmaps, statistics and
// histogram, logit lens from the model, activations for your prompt.
import { el, put, api, fmt, fmtInt, fmtSigned, sequential, diverging, showToken, errorBox, showError, busy, getModelInfo, navigate, isTyping, PURPLE } from './util.js';
import { recordView, heatmap } from './records.js';

const manifests = new Map();
function manifest(ds) {
  if (!manifests.has(ds)) manifests.set(ds, api(`/api/v1/datasets/${encodeURIComponent(ds)}`).catch(e => { manifests.delete(ds); throw e; }));
  return manifests.get(ds);
}

function parsePath(url) {
  const parts = url.pathname.split('/').slice(2).map(decodeURIComponent);
  if (parts.length !== 4) throw new Error(`bad component URL ${url.pathname}: want /c/{dataset}/{location}/{layer}/{index}`);
  const [dataset, location, layerS, indexS] = parts;
  if (!/^\d+$/.test(layerS) || !/^\d+$/.test(indexS)) throw new Error(`bad component URL ${url.pathname}: layer and index must be non-negative integers`);
  return { dataset, location, layer: +layerS, index: +indexS };
}
const href = (c, q = '') => `/c/${encodeURIComponent(c.dataset)}/${encodeURIComponent(c.location)}/${c.layer}/${c.index}${q}`;

// nodeFor maps a dataset location to the debugger's node type (for the logit lens).
function nodeTypeFor(loc) {
  if (loc === 'mlp.post_act') return 'mlp_neuron';
  if (loc === 'attn.heads') return 'attention_head';
  return null;
}

export async function renderComponent(app, url) {
  const err = errorBox();
  let c;
  try { c = parsePath(url); } catch (e) { put(app, err); showError(err, e); return; }
  const prompts = url.searchParams.getAll('prompt');
  const head = el('div.page-head');
  const body = el('div', busy('loading component'));
  put(app, head, err, body);

  let m, loc, data;
  try {
    m = await manifest(c.dataset);
    loc = (m.locations || []).find(l => l.name === c.location);
    if (!loc) throw new Error(`dataset ${c.dataset} has no location ${c.location} (it has ${(m.locations || []).map(l => l.name).join(', ')})`);
    if (!loc.layers.includes(c.layer)) throw new Error(`dataset ${c.dataset} has no layer ${c.layer} of ${c.location} (layers ${loc.layers.join(', ')})`);
    if (c.index >= loc.components) throw new Error(`${c.location} has ${loc.components} components per layer: index ${c.index} is out of range`);
    data = await api(`/api/v1/datasets/${encodeURIComponent(c.dataset)}/${encodeURIComponent(c.location)}/${c.layer}/${c.index}`);
  } catch (e) {
    put(head, el('h1', `${c.location} · layer ${c.layer} · #${c.index}`), el('span.crumbs', el('a', { href: '/' }, 'datasets'), ' / ', c.dataset));
    put(body);
    showError(err, e);
    return;
  }
  const pairs = !!(loc.pairs || data.pairs);
  const layers = loc.layers.slice().sort((a, b) => a - b);
  const li = layers.indexOf(c.layer);
  const q = url.search;
  const moves = {
    prev: c.index > 0 ? href({ ...c, index: c.index - 1 }, q) : null,
    next: c.index + 1 < loc.components ? href({ ...c, index: c.index + 1 }, q) : null,
    up: li > 0 ? href({ ...c, layer: layers[li - 1] }, q) : null,
    down: li + 1 < layers.length ? href({ ...c, layer: layers[li + 1] }, q) : null,
  };
  const nb = (key, label, title) => el('button.small', { 'data-nav-move': key, disabled: !moves[key], title, onclick: () => moves[key] && navigate(moves[key]) }, label);
  const jump = el('input', { type: 'number', min: 0, max: loc.components - 1, value: c.index, style: { width: '5.5rem' }, title: 'component index' });
  put(head,
    el('div', el('div.crumbs', el('a', { href: '/' }, 'datasets'), ' / ', el('a', { href: `/datasets/${encodeURIComponent(c.dataset)}` }, c.dataset), ' / ',
      el('a', { href: `/l/${encodeURIComponent(c.dataset)}/${encodeURIComponent(c.location)}/${c.layer}` }, `${c.location} layer ${c.layer}`)),
      el('h1', { 'data-testid': 'component-title' }, `${pairs ? 'Head' : c.location.startsWith('ae.') ? 'Latent' : 'Neuron'} ${c.layer}:${c.index}`, el('span.muted', { style: { fontWeight: 400, fontSize: '1rem', marginLeft: '.6rem' } }, c.location))),
    el('span.spacer', { style: { flex: 1 } }),
    el('div.nav-keys', nb('up', '↑ layer', 'previous layer (↑)'), nb('down', '↓ layer', 'next layer (↓)'), nb('prev', '← prev', 'previous component (←)'), nb('next', 'next →', 'next component (→)'),
      el('form', { onsubmit: e => { e.preventDefault(); navigate(href({ ...c, index: Math.max(0, Math.min(loc.components - 1, +jump.value || 0)) }, q)); } }, jump, ' ', el('button.small', 'go'))),
  );

  const s = data.stats || {};
  const max = s.max || Math.max(0, ...(data.top || []).map(r => r.max_activation));
  const opts = { max, pairs };
  const section = (title, recs, n, testid, idPrefix, sub) => {
    const list = el('div', testid ? { 'data-testid': testid } : {});
    let all = false;
    const draw = () => put(list, ...(recs || []).slice(0, all ? recs.length : n).map((r, i) => recordView(r, `${idPrefix}${i}`, opts)));
    draw();
    const more = recs && recs.length > n ? el('button.ghost.small', { 'data-testid': testid ? testid + '-show-all' : null, onclick: e => { all = !all; e.target.textContent = all ? `show ${n}` : `show all ${recs.length}`; draw(); } }, `show all ${recs.length}`) : null;
    return el('div.panel', el('div.panel-head', el('h2', title), sub ? el('span.muted.small', sub) : null, el('span.spacer'), more),
      recs && recs.length ? list : [el('div.empty', 'no records'), list]);
  };

  // stats + histogram
  const stat = (k, v) => el('div.stat', el('div.k', k), el('div.v', v));
  const statsPanel = el('div.panel', el('div.panel-head', el('h2', 'Activation statistics'), el('span.muted.small', `over ${fmtInt(s.count)} ${pairs ? 'token pairs' : 'tokens'}`)),
    el('div.stats', { 'data-testid': 'stats' }, stat('max', fmt(s.max)), stat('min', fmt(s.min)), stat('mean', fmt(s.mean)), stat('variance', fmt(s.variance)),
      stat('skewness', fmt(s.skewness)), stat('kurtosis', fmt(s.kurtosis)), stat('non-zero', s.frac_nonzero == null ? '–' : (100 * s.frac_nonzero).toFixed(2) + '%')),
    histogram(s), quantileLine(s));

  const lens = el('div.panel', el('div.panel-head', el('h2', 'Logit lens')), busy());
  const mine = yourPrompt(c, max, pairs, prompts, url);
  const explanations = el('div.panel', { 'data-testid': 'explanations' });
  loadExplanations(explanations, c);

  const quant = (data.quantiles || []).filter(b => b.records && b.records.length);
  const quantBody = el('div');
  let quantAll = false;
  const drawQuant = () => put(quantBody, quant.slice().reverse().map(b => el('div', { style: { marginBottom: '.6rem' } }, el('h3', `${fmt(b.lower)} – ${fmt(b.upper)}`, el('span.muted', ` · ${b.records.length} records`)),
    el('div', { 'data-testid': 'quantile-' + b.bucket }, b.records.slice(0, quantAll ? b.records.length : 2).map((r, i) => recordView(r, `q${b.bucket}-${i}`, opts))))));
  drawQuant();
  const quantPanel = quant.length ? el('div.panel', el('div.panel-head', el('h2', 'Quantiles'), el('span.muted.small', 'random records per bucket of record maximum'), el('span.spacer'),
    el('button.ghost.small', { onclick: e => { quantAll = !quantAll; e.target.textContent = quantAll ? 'show 2 each' : 'show all'; drawQuant(); } }, 'show all')), quantBody) : null;
  put(body,
    el('div.grid.cols-2',
      el('div', section('Top activations', data.top, 6, 'top-records', 'top-', pairs ? 'colour: strongest attention from each token · hover a token: what attends to it' : 'colour: activation / max activation'),
        section('Random sample', data.random, 3, 'random-records', 'random-'), quantPanel),
      el('div.sticky-col', explanations, statsPanel, lens, mine.node)),
  );
  logitLens(lens, c);
  mine.run();

  const onKey = e => {
    if (isTyping(e) || e.ctrlKey || e.metaKey || e.altKey || document.querySelector('.overlay')) return;
    const key = { ArrowLeft: 'prev', ArrowRight: 'next', ArrowUp: 'up', ArrowDown: 'down' }[e.key];
    if (key && moves[key]) { e.preventDefault(); navigate(moves[key]); }
  };
  document.addEventListener('keydown', onKey);
  return () => document.removeEventListener('keydown', onKey);
}

function histogram(s) {
  const h = s.histogram || [], edges = s.histogram_edges || [];
  let lo = h.findIndex(x => x > 0), hi = h.length - 1;
  while (hi >= 0 && !(h[hi] > 0)) hi--;
  if (lo < 0) return el('div.empty', 'empty histogram');
  const bins = h.slice(lo, hi + 1);
  const W = 460, H = 110, pad = 18;
  const bw = (W - 2) / bins.length;
  const logmax = Math.log10(Math.max(...bins) + 1);
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H + pad}`); svg.setAttribute('class', 'hist'); svg.style.width = '100%'; svg.setAttribute('data-testid', 'histogram');
  const add = (tag, attrs, text) => { const n = document.createElementNS(svg.namespaceURI, tag); for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v); if (text != null) n.textContent = text; svg.append(n); return n; };
  bins.forEach((x, i) => {
    const y = x > 0 ? Math.max(1.5, H * Math.log10(x + 1) / logmax) : 0;
    const r = add('rect', { class: 'bar', x: 1 + i * bw, y: H - y, width: Math.max(0.5, bw - 0.6), height: y });
    const a = edges[lo + i], b = edges[lo + i + 1];
    r.setAttribute('data-tip', `[${fmt(a)}, ${fmt(b)}): ${fmtInt(x)}`);
  });
  add('line', { x1: 0, x2: W, y1: H, y2: H });
  if (edges.length) {
    add('text', { x: 2, y: H + 13 }, fmt(edges[lo]));
    add('text', { x: W - 2, y: H + 13, 'text-anchor': 'end' }, fmt(edges[hi + 1]));
  }
  return el('div', { style: { marginTop: '.8rem' } }, el('h3', 'Histogram (log counts)'), svg);
}

function quantileLine(s) {
  const b = s.quantile_boundaries || [];
  if (!b.length) return null;
  return el('div.small.muted', { style: { marginTop: '.4rem' } }, 'quantile boundaries of record maxima: ', el('span.mono', b.map(x => fmt(x, 3)).join(' · ')));
}

async function logitLens(panel, c) {
  const type = nodeTypeFor(c.location);
  const setBody = (...n) => { put(panel, panel.firstChild, ...n); };
  let info;
  try { info = await getModelInfo(); } catch { info = null; }
  if (!info || !info.loaded) { setBody(el('div.empty', 'Load a model (tdb serve --model) to see the tokens this component writes and reads.')); return; }
  if (type !== 'mlp_neuron') { setBody(el('div.empty', type === 'attention_head' ? 'A head\'s output tokens depend on the prompt: open it in the debugger (attention pattern, upvoted tokens of a node).' : 'The logit lens of autoencoder latents needs the autoencoder loaded in the debugger.')); return; }
  try {
    // Setting the neuron to 1 on a one-token prompt makes its write the unit write: the logit lens.
    const node = { type, layer: c.layer, index: c.index, token: 0 };
    const resp = await api('/api/v1/tdb', { prompt: '<|endoftext|>', targets: ['#0'], loss: 'zero', top_k: 1, candidates: 1, ablations: [{ node, value: 1 }], inspect: [node] });
    const d = (resp.details || [])[0] || {};
    const list = (title, xs, color) => el('div', el('h3', title), el('div.toklist', (xs || []).map(x => {
      const m = Math.max(...xs.map(y => Math.abs(y.score))) || 1;
      return el('span.t', { style: { background: color(Math.abs(x.score) / m) }, 'data-tip': `${JSON.stringify(x.text)}\n${fmt(x.score, 5)}` }, showToken(x.text), el('small', fmtSigned(x.score, 3)));
    })));
    setBody(el('div.detail-grid', { 'data-testid': 'logit-lens' }, list('Output tokens it upvotes', d.upvoted, t => sequential(t)), list('Output tokens it downvotes', d.downvoted, t => diverging(-t)),
      list('Input tokens that excite it', d.input_tokens, t => sequential(t, [45, 91, 215]))));
  } catch (e) { setBody(el('div.error', e.message)); }
}

// yourPrompt is the "activations for your prompt" box; prompts live in the URL.
function yourPrompt(c, max, pairs, prompts, url) {
  const box = el('textarea', { rows: 2, placeholder: 'Type a prompt to see this component\'s activations', spellcheck: false, 'data-testid': 'your-prompt' });
  const out = el('div');
  const node = el('div.panel', el('div.panel-head', el('h2', 'Activations for your prompt')),
    el('form', { onsubmit: e => { e.preventDefault(); if (!box.value.trim()) return; const u = new URL(url); u.searchParams.append('prompt', box.value); navigate(u.pathname + u.search.replace(/\+/g, '%20')); } },
      box, el('div.row', { style: { marginTop: '.4rem', justifyContent: 'flex-end' } }, el('button.primary.small', 'Add prompt'))), out);
  async function run() {
    if (!prompts.length) { put(out, el('div.empty.small', { style: { marginTop: '.4rem' } }, 'Prompts you add stay in the URL, so a link shows them too.')); return; }
    put(out, busy());
    const rows = [];
    for (const [i, p] of prompts.entries()) {
      try {
        const a = await api('/api/v1/activations', { prompt: p, location: c.location, layer: c.layer, index: c.index });
        const rm = el('button.ghost.small', { title: 'remove', onclick: () => { const u = new URL(url); const ps = u.searchParams.getAll('prompt'); ps.splice(i, 1); u.searchParams.delete('prompt'); ps.forEach(x => u.searchParams.append('prompt', x)); navigate(u.pathname + u.search); } }, '×');
        rows.push(el('div.record', { 'data-prompt-record': i }, el('div.meta', el('b', fmt(Math.max(...a.activations), 4)), rm), heatmap(a.tokens.map(t => t.text), a.activations, { max, pairs })));
      } catch (e) { rows.push(el('div.error', { 'data-testid': 'error' }, e.message)); }
    }
    put(out, ...rows);
  }
  return { node, run };
}

// explanationList renders explanations with their scores (simulation first).
export function explanationList(xs) {
  return xs.map(x => {
    const sc = x.scores || {};
    const scores = ['simulation', 'detection', 'fuzzing'].filter(k => sc[k]).map(k => el('span.pill', { 'data-tip': `judge ${sc[k].judge}` }, `${k} ${fmt(sc[k].value, 3)}`));
    const who = x.method ? [x.method.explainer, x.method.model].filter(Boolean).join(' · ') : '';
    return el('div.explanation', el('div.text', x.explanation), el('div.small.muted', who, ' ', scores));
  });
}

async function loadExplanations(panel, c) {
  try {
    const xs = await api(`/api/v1/explanations/${encodeURIComponent(c.dataset)}/${encodeURIComponent(c.location)}/${c.layer}/${c.index}`);
    if (!xs.length) return; // an empty panel is hidden
    put(panel, el('div.panel-head', el('h2', xs.length > 1 ? 'Explanations' : 'Explanation')), explanationList(xs));
  } catch (e) { put(panel, el('div.error', 'Explanations: ' + e.message)); }
}
