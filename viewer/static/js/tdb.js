// The TDB page: one question (prompt, target, distractor) against the live
// model, all state in the URL: /tdb?prompt=…&target=…&distractor=…
// [&second=…][&loss=…][&k=…][&ablate=NODE[=V]…][&trace=NODE[:q|k|qk|v]]
// [&mlp_ae=1][&attn_ae=1][&sort=COL:SUB:DIR][&open=NODE][&attn=HEAD].
import {
  el, put, api, fmt, fmtSigned, diverging, sequential, inkFor, PURPLE, showToken, tokChip, errorBox, showError, busy,
  nodeName, parseNode, KIND_LABEL, getModelInfo, componentLink, navigate, isTyping,
} from './util.js';
import { explanationList } from './component.js';

const esc = s => String(s).replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const LOSSES = [['logit_diff', 'logit difference (target − distractor)'], ['logit_minus_mean', 'target logit − mean logit'], ['probs', 'target probability'], ['zero', 'zero (tracing only)']];
const COL_LABEL = { activation: 'Activation', write_norm: 'Write magnitude', act_times_grad: 'Est. total effect', direction_write: 'Direct effect' };
const COL_TIP = {
  activation: 'MLP: post-GELU activation · head: attention probability · latent: latent value',
  write_norm: 'signed norm of what the node writes to the residual stream',
  act_times_grad: 'activation × gradient of the loss (or traced scalar): the estimated total effect',
  direction_write: 'the node\'s write projected on the gradient at the final residual stream: its direct effect',
};
export const EXAMPLE = { prompt: '<|endoftext|>Paris, France. Ottawa,', target: [' Canada'], distractor: [' Germany'] };

// State <-> URL.
function readState(url) {
  const q = url.searchParams;
  return {
    prompt: q.get('prompt') ?? '',
    targets: q.getAll('target'),
    distractors: q.getAll('distractor'),
    second: q.get('second') ?? '',
    loss: q.get('loss') || 'logit_diff',
    k: q.get('k') ? +q.get('k') : 10,
    ablate: q.getAll('ablate'),
    trace: q.get('trace') || '',
    mlpAE: q.get('mlp_ae') === '1',
    attnAE: q.get('attn_ae') === '1',
    sort: q.get('sort') || 'act_times_grad:value:abs',
    open: q.get('open') || '',
    attn: q.get('attn') || '',
  };
}
function stateURL(s) {
  const q = new URLSearchParams();
  if (s.prompt) q.set('prompt', s.prompt);
  for (const t of s.targets) q.append('target', t);
  for (const d of s.distractors) q.append('distractor', d);
  if (s.second) q.set('second', s.second);
  if (s.loss !== 'logit_diff') q.set('loss', s.loss);
  if (s.k !== 10) q.set('k', s.k);
  for (const a of s.ablate) q.append('ablate', a);
  if (s.trace) q.set('trace', s.trace);
  if (s.mlpAE) q.set('mlp_ae', '1');
  if (s.attnAE) q.set('attn_ae', '1');
  if (s.sort !== 'act_times_grad:value:abs') q.set('sort', s.sort);
  if (s.open) q.set('open', s.open);
  if (s.attn) q.set('attn', s.attn);
  return '/tdb?' + q.toString().replace(/\+/g, '%20');
}

// buildRequest turns the state into the debugger's Request JSON.
export function buildRequest(s) {
  const req = { prompt: s.prompt, targets: s.targets, loss: s.loss, top_k: s.k };
  if (s.distractors.length) req.distractors = s.distractors;
  if (s.ablate.length) {
    req.ablations = s.ablate.map(a => {
      const [name, val] = a.split('=');
      const v = val === undefined || val === '' ? 0 : Number(val);
      if (!Number.isFinite(v)) throw new Error(`ablation ${a}: bad value "${val}"`);
      return { node: parseNode(name), value: v };
    });
  }
  if (s.trace) {
    const [name, path] = s.trace.split(':');
    req.trace = { node: parseNode(name) };
    if (path) {
      if (!['q', 'k', 'qk', 'v'].includes(path)) throw new Error(`trace ${s.trace}: the path must be q, k, qk or v`);
      req.trace.path = path;
    }
  }
  if (s.second) req.second_prompt = s.second;
  if (s.mlpAE) req.use_mlp_autoencoders = true;
  if (s.attnAE) req.use_attention_autoencoders = true;
  return req;
}

const tokenized = new Map();
function tokenize(text) {
  if (!tokenized.has(text)) tokenized.set(text, api('/api/v1/tokenize', { text }).then(d => d.tokens).catch(e => { tokenized.delete(text); throw e; }));
  return tokenized.get(text);
}

const cache = new Map();
async function runTDB(req, signal) {
  const key = JSON.stringify(req);
  if (cache.has(key)) return cache.get(key);
  const t0 = performance.now();
  const p = api('/api/v1/tdb', req, { signal }).then(resp => ({ resp, serverMs: performance.now() - t0 }));
  cache.set(key, p);
  p.catch(() => cache.delete(key));
  if (cache.size > 40) cache.delete(cache.keys().next().value);
  return p;
}

export async function renderTDB(app, url) {
  let state = readState(url);
  let info = null;
  try { info = await getModelInfo(); } catch (e) { /* shown below */ }
  const err = errorBox();
  let last = null; // {req, resp}
  let selected = -1;
  let abort = null;

  // --- question form
  const prompt = el('textarea', { rows: 2, 'data-focus': true, 'data-testid': 'prompt', placeholder: 'Prompt (use <|endoftext|> for the special token)', spellcheck: false });
  const second = el('textarea', { rows: 2, placeholder: 'Second prompt, same number of tokens', spellcheck: false, 'data-testid': 'second-prompt' });
  const secondWrap = el('div', { hidden: true }, el('label.field', 'Second prompt (columns become Left / Diff / Right)', second));
  const secondToggle = el('button.ghost.small', { type: 'button', onclick: () => { secondWrap.hidden = !secondWrap.hidden; if (!secondWrap.hidden) second.focus(); } }, '+ compare with a second prompt');
  const lossSel = el('select', { 'data-testid': 'loss-select' }, LOSSES.map(([v, l]) => el('option', { value: v }, l)));
  const kIn = el('input', { type: 'number', min: 1, max: 200, style: { width: '4.5rem' }, title: 'top-k and bottom-k per column', 'data-testid': 'top-k' });
  const targets = tokenList('target', 'Target', () => draft.targets, v => { draft.targets = v; });
  const distractors = tokenList('distractor', 'Distractor', () => draft.distractors, v => { draft.distractors = v; });
  const swap = el('button.ghost', { type: 'button', title: 'swap target and distractor', onclick: () => { [draft.targets, draft.distractors] = [draft.distractors, draft.targets]; targets.sync(); distractors.sync(); } }, '⇄ swap');
  const mlpAE = el('input', { type: 'checkbox', 'data-testid': 'mlp-ae' }), attnAE = el('input', { type: 'checkbox', 'data-testid': 'attn-ae' });
  const aeRow = el('div.row');
  if (info && info.autoencoders && info.autoencoders.mlp && info.autoencoders.mlp.length) aeRow.append(el('label.switch', mlpAE, 'MLP autoencoder latents'));
  if (info && info.autoencoders && info.autoencoders.attention && info.autoencoders.attention.length) aeRow.append(el('label.switch', attnAE, 'attention autoencoder latents'));
  const submit = el('button.primary', { type: 'submit', 'data-testid': 'submit' }, 'Run');
  const status = el('span');
  let draft = { targets: [], distractors: [] };

  const form = el('form.panel', {
    onsubmit: e => { e.preventDefault(); submitForm(); },
  },
    el('div.panel-head', el('h2', 'Question'), el('span.muted.small', 'Why does the model say the target instead of the distractor?'), el('span.spacer'), status),
    el('label.field', 'Prompt', prompt),
    secondToggle, secondWrap,
    el('div.row.top', { style: { marginTop: '.6rem' } },
      el('div.grow', targets.node), el('div', { style: { paddingTop: '1.3rem' } }, swap), el('div.grow', distractors.node)),
    el('div.row', { style: { marginTop: '.6rem' } },
      el('label.field', 'Loss', lossSel), el('label.field', 'Top-k per column', kIn), aeRow, el('span.spacer', { style: { flex: 1 } }),
      el('span.muted.small', el('kbd', 'Ctrl'), '+', el('kbd', 'Enter')), submit),
  );

  function tokenList(kind, label, get, set) {
    const chips = el('div.chips');
    const input = el('input.chip-input', { type: 'text', placeholder: kind === 'target' ? '" Canada"' : '" Germany"', 'data-testid': kind + '-input',
      onkeydown: e => { if (e.key === 'Enter') { e.preventDefault(); add(); } else if (e.key === 'Backspace' && !input.value && get().length) { set(get().slice(0, -1)); sync(); } } });
    const notes = el('div');
    function add() {
      let v = input.value;
      if (!v) return;
      v = v.replace(/^"(.*)"$/, '$1');
      set([...get(), v]); input.value = ''; sync();
    }
    async function sync() {
      put(chips, ...get().map((t, i) => el('span.chip' + (kind === 'distractor' ? '.distractor' : ''), { 'data-token': t },
        showToken(t).replace(/ /g, '␣'), el('button', { type: 'button', title: 'remove', onclick: () => { const a = get().slice(); a.splice(i, 1); set(a); sync(); } }, '×'))), input);
      put(notes);
      for (const [i, t] of get().entries()) {
        if (t.startsWith('#')) continue;
        if (!/^\s/.test(t)) notes.append(el('div.note', `“${t}” has no leading space: it is the token inside a word, not the word (did you mean “ ${t}”?)`));
        try {
          const tokens = await tokenize(t);
          if (tokens.length !== 1) {
            chips.children[i]?.classList.add('bad');
            notes.append(el('div.error', `${label} “${t}” is ${tokens.length} tokens (${tokens.map(x => JSON.stringify(x.text)).join(' + ')}); it must be exactly one token`));
          }
        } catch { /* the server will say */ }
      }
    }
    const node = el('div', el('label.field', label + (kind === 'distractor' ? 's (optional)' : 's')), chips, notes);
    return { node, sync, add, input };
  }

  // --- result panels
  const lossPanel = el('div.panel');
  const candPanel = el('div.panel');
  const abPanel = el('div.panel');
  const effectsPanel = el('div.panel', { style: { marginTop: '1rem' } });
  const tablePanel = el('div.panel');
  const attnPanel = el('div.panel', { hidden: true });
  const rawPanel = el('div.panel');
  put(app,
    el('div.page-head', el('h1', 'Debugger'), el('span.muted', info && info.loaded ? `model ${info.name}` : '')),
    !info || !info.loaded ? el('div.error', { 'data-testid': 'error' }, info ? 'No model is loaded: start tdb serve with --model to use the debugger.' : 'Cannot reach the tdb server.') : null,
    form, err,
    // Token effects sit under the ablations: the right column would be
    // mostly empty beside the candidates otherwise.
    el('div.grid.cols-2', { style: { marginTop: '1rem' } }, el('div', lossPanel, candPanel), el('div', abPanel, effectsPanel)),
    tablePanel, attnPanel, rawPanel,
  );

  function setForm() {
    prompt.value = state.prompt;
    second.value = state.second;
    secondWrap.hidden = !state.second;
    lossSel.value = state.loss;
    kIn.value = state.k;
    mlpAE.checked = state.mlpAE; attnAE.checked = state.attnAE;
    draft = { targets: state.targets.slice(), distractors: state.distractors.slice() };
    targets.sync(); distractors.sync();
  }

  function submitForm() {
    targets.add(); distractors.add();
    const s = { ...state, prompt: prompt.value, second: secondWrap.hidden ? '' : second.value, loss: lossSel.value, k: Math.max(1, Math.min(200, +kIn.value || 10)),
      targets: draft.targets, distractors: draft.distractors, mlpAE: mlpAE.checked, attnAE: attnAE.checked, open: '' };
    go(s, true);
  }
  // go changes the state: a new history entry, then the page follows the URL.
  function go(s, force) {
    const u = stateURL(s);
    if (force && location.pathname + location.search === u) { update(new URL(u, location.href)); return; }
    navigate(u);
  }

  function renderAblations() {
    const rows = state.ablate.map((a, i) => el('tr', el('td', a.split('=')[0]), el('td', '= ' + (a.split('=')[1] || '0')),
      el('td', { style: { textAlign: 'right' } }, el('button.ghost.small', { title: 'remove this ablation', 'data-testid': 'remove-ablation', onclick: () => { const ab = state.ablate.slice(); ab.splice(i, 1); go({ ...state, ablate: ab }); } }, 'remove'))));
    const addIn = el('input', { type: 'text', placeholder: 'mlp_L1_7@3=0', style: { width: '11rem' }, 'data-testid': 'ablation-input' });
    const traceIn = el('input', { type: 'text', placeholder: 'attn_L1_3@6>2:q', style: { width: '11rem' }, value: state.trace, 'data-testid': 'trace-input' });
    put(abPanel,
      el('div.panel-head', el('h2', 'Ablations'), el('span.spacer'), state.ablate.length ? el('button.ghost.small', { onclick: () => go({ ...state, ablate: [] }) }, 'clear all') : null),
      state.ablate.length ? el('table.ablist', { 'data-testid': 'ablations' }, rows) : el('div.empty', 'None. Ablate a node from its row in the node table, or add one here.'),
      el('form.row', { style: { marginTop: '.5rem' }, onsubmit: e => { e.preventDefault(); if (!addIn.value.trim()) return; try { const n = addIn.value.trim(); parseNode(n.split('=')[0]); go({ ...state, ablate: [...state.ablate, n] }); } catch (x) { showError(err, x); } } }, addIn, el('button.small', 'Ablate')),
      el('div.panel-head', { style: { marginTop: '1rem' } }, el('h2', 'Trace'), el('span.spacer'), state.trace ? el('button.ghost.small', { 'data-testid': 'clear-trace', onclick: () => go({ ...state, trace: '' }) }, 'clear') : null),
      state.trace ? el('div', { 'data-testid': 'trace' }, 'Explaining ', el('code', state.trace), ' instead of the loss.') : el('div.empty', 'Explaining the loss. Trace a node to explain why it fired.'),
      el('form.row', { style: { marginTop: '.5rem' }, onsubmit: e => { e.preventDefault(); const t = traceIn.value.trim(); try { if (t) parseNode(t.split(':')[0]); go({ ...state, trace: t }); } catch (x) { showError(err, x); } } }, traceIn, el('button.small', 'Trace')),
    );
  }

  function compareMode(resp) {
    if (resp.runs.some(r => r.label === 'right')) return { other: 'right', labels: ['Left', 'Δ', 'Right'] };
    if (resp.runs.some(r => r.label === 'baseline')) return { other: 'baseline', labels: ['Ablated', 'Δ', 'Base'] };
    return null;
  }

  function renderLoss(req, resp) {
    const main = resp.runs[0];
    const cmp = compareMode(resp);
    const other = cmp && resp.runs.find(r => r.label === cmp.other);
    put(lossPanel,
      el('div.panel-head', el('h2', state.trace ? 'Traced scalar' : 'Loss'), el('span.muted.small', resp.scalar)),
      el('div.lossbox',
        el('div', el('div.loss-label', cmp ? cmp.labels[0] : (state.trace ? 'value' : state.loss)), el('div.loss-big', { 'data-testid': 'loss', 'data-value': String(main.loss) }, fmt(main.loss, 6))),
        other ? el('div', el('div.loss-label', cmp.labels[2]), el('div.loss-big.muted', { 'data-testid': 'loss-other' }, fmt(other.loss, 6))) : null,
        other ? el('div', el('div.loss-label', 'Δ'), el('div.loss-big', { style: { color: main.loss - other.loss >= 0 ? 'var(--pos)' : 'var(--neg)' } }, fmtSigned(main.loss - other.loss, 4))) : null,
      ),
      el('div.small.muted', { style: { marginTop: '.4rem' } }, `${main.tokens.length} tokens`, cmp && cmp.other === 'right' ? ' · differing tokens are outlined below' : ''),
    );
    // candidates
    const c = main.candidates;
    let showAll = false;
    const body = el('div');
    const draw = () => {
      const n = showAll ? 100 : 10;
      const list = (xs, title) => el('div', el('h3', title), el('div.cand', xs.slice(0, n).map(x => [
        el('span', x.role ? tokChip(x.text) : el('button.ghost.cand-pick', { title: 'use as the distractor', 'data-candidate': x.text, onclick: () => go({ ...state, distractors: [x.text], open: '' }) }, tokChip(x.text)), x.role ? el('span.role', x.role) : null), el('span.num', { style: { color: x.relative >= 0 ? 'var(--pos)' : 'var(--neg)' } }, fmtSigned(x.relative)), el('span.num.muted', (x.prob * 100).toFixed(x.prob < 0.001 ? 3 : 1) + '%')])));
      put(body,
        c.pinned && c.pinned.length ? list(c.pinned, 'Target and distractor') : null,
        el('div.cands', { style: { marginTop: '.5rem' } }, list(c.top, 'Top'), list(c.bottom, 'Bottom')));
    };
    draw();
    put(candPanel, el('div.panel-head', el('h2', 'Next token'), el('span.muted.small', `at position ${c.position}, logit relative to the first target`), el('span.spacer'),
      el('button.ghost.small', { onclick: e => { showAll = !showAll; e.target.textContent = showAll ? 'show 10' : 'show 100'; draw(); } }, 'show 100')), body);
  }

  function renderEffects(resp) {
    const rows = [['embedding', 'embeddings'], ['mlp', 'MLP'], ['attention_from', 'attention (from)'], ['attention_to', 'attention (to)'], ['latents', 'latents']];
    let scale = 0;
    for (const r of resp.runs) for (const [k] of rows) for (const v of r.token_effects[k] || []) scale = Math.max(scale, Math.abs(v));
    scale = scale || 1;
    const cmp = compareMode(resp);
    const right = cmp && cmp.other === 'right' ? resp.runs.find(r => r.label === 'right') : null;
    const blocks = resp.runs.map(run => el('div', { style: { marginBottom: '.6rem' } },
      resp.runs.length > 1 ? el('h3', run.label === 'main' ? (cmp ? cmp.labels[0] : 'main') : run.label) : null,
      el('div.effects', rows.filter(([k]) => run.token_effects[k]).map(([k, label]) => [
        el('div.lab', label),
        el('div.heat', run.tokens.map((t, i) => {
          const v = run.token_effects[k][i];
          const differs = right && run.label === 'main' && right.tokens[i] && right.tokens[i].id !== t.id;
          return el('span', { 'data-token-index': i, 'data-activation': v, 'data-tip': `${i}: ${JSON.stringify(t.text)}\n${label} effect ${fmtSigned(v, 4)}`, class: differs ? 'pinned' : null,
            style: { background: diverging(v / scale), color: inkFor(v / scale) } }, showToken(t.text));
        })),
      ]))));
    put(effectsPanel, el('div.panel-head', el('h2', 'Token effects'), el('span.spacer'),
      el('span.legend', fmtSigned(-scale, 2), el('span.bar', { style: { background: `linear-gradient(90deg, ${diverging(-1)}, #fff, ${diverging(1)})` } }), fmtSigned(scale, 2))),
      el('div.small.muted', { style: { marginBottom: '.4rem' } }, 'estimated total effect summed per token'), blocks);
  }

  // --- node table
  function sortValue(row, key, sub) {
    if (key === 'name') return [row.node.layer, row.node.token, row.node.index];
    const v = row.metrics[key];
    if (!v) return 0;
    if (sub === 'diff') return v.diff ?? 0;
    if (sub === 'other') return v.baseline ?? v.right ?? 0;
    return v.value;
  }
  function sortedRows(resp) {
    const [key, sub, dir] = state.sort.split(':');
    const rows = resp.nodes.slice();
    const val = r => sortValue(r, key, sub);
    rows.sort((a, b) => {
      const x = val(a), y = val(b);
      if (Array.isArray(x)) { for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return dir === 'desc' ? y[i] - x[i] : x[i] - y[i]; return 0; }
      if (dir === 'abs') return Math.abs(y) - Math.abs(x);
      return dir === 'asc' ? x - y : y - x;
    });
    return rows;
  }
  function nextSort(key, sub) {
    const [k, s, d] = state.sort.split(':');
    if (k !== key || s !== sub) return `${key}:${sub}:${key === 'name' ? 'asc' : 'desc'}`;
    const cycle = key === 'name' ? ['asc', 'desc'] : ['desc', 'asc', 'abs'];
    return `${key}:${sub}:${cycle[(cycle.indexOf(d) + 1) % cycle.length]}`;
  }

  function renderTable(req, resp) {
    const t0 = performance.now();
    const cmp = compareMode(resp);
    const subs = cmp ? ['value', 'diff', 'other'] : ['value'];
    const rows = sortedRows(resp);
    const tokens = resp.runs[0].tokens;
    const scales = {};
    for (const c of resp.columns) for (const s of subs) {
      let m = 0;
      for (const r of resp.nodes) m = Math.max(m, Math.abs(sortValue(r, c, s) || 0));
      scales[c + s] = m || 1;
    }
    const [sk, ss, sd] = state.sort.split(':');
    const arrow = (k, s) => sk === k && ss === s ? el('span.arrow', sd === 'asc' ? '▲' : sd === 'desc' ? '▼' : '|▼|') : null;
    const head1 = el('tr', el('th.l.sortable', { rowspan: cmp ? 2 : 1, onclick: () => go({ ...state, sort: nextSort('name', 'value') }) }, 'Node', arrow('name', 'value')),
      el('th.l', { rowspan: cmp ? 2 : 1 }, 'Token'),
      resp.columns.map(c => cmp
        ? el('th.group', { colspan: 3, 'data-tip': COL_TIP[c] }, COL_LABEL[c] || c)
        : el('th.sortable.sep', { 'data-col': c, 'data-tip': COL_TIP[c] + '\nclick to sort', onclick: () => go({ ...state, sort: nextSort(c, 'value') }) }, COL_LABEL[c] || c, arrow(c, 'value'))),
      el('th.l', { rowspan: cmp ? 2 : 1 }, 'Listed for'));
    const head2 = cmp ? el('tr', resp.columns.map(c => subs.map((s, i) => el('th.sortable' + (i === 0 ? '.sep' : ''), { 'data-col': c + ':' + s, onclick: () => go({ ...state, sort: nextSort(c, s) }) }, cmp.labels[i], arrow(c, s))))) : null;
    // The body is one HTML string: thousands of cells build several times
    // faster than element by element. Clicks are delegated.
    const chip = t => `<span class="tok" title="${esc(JSON.stringify(t))}">${esc(showToken(t))}</span>`;
    const html = rows.map((r, i) => {
      const n = r.node;
      let tok = '';
      if (n.token >= 0 && tokens[n.token]) {
        tok = n.type === 'attention_head' && n.key_token >= 0 && tokens[n.key_token]
          ? chip(tokens[n.token].text) + '<span class="muted"> ← </span>' + chip(tokens[n.key_token].text)
          : chip(tokens[n.token].text);
      }
      let cells = '';
      for (const c of resp.columns) subs.forEach((s, j) => {
        const v = sortValue(r, c, s);
        const t = v / scales[c + s];
        const ink = inkFor(t);
        cells += `<td${j === 0 ? ' class="sep"' : ''} data-col="${esc(c)}${cmp ? ':' + s : ''}" data-value="${Number(v)}" style="background:${diverging(t)}${ink ? ';color:' + ink : ''}">${s === 'diff' ? fmtSigned(v) : fmt(v)}</td>`;
      });
      return `<tr class="node" data-node="${esc(r.name)}" data-i="${i}" tabindex="-1"><td class="name"><span class="kind ${esc(n.type)}">${esc(KIND_LABEL[n.type] || n.type)}</span>${esc(r.name)}</td><td class="l">${tok}</td>${cells}<td class="l reason">${esc((r.reason || []).join(', '))}</td></tr>`;
    }).join('');
    // Hovering a row outlines its token(s) in the token-effect heatmaps.
    const mark = (tr) => {
      for (const x of effectsPanel.querySelectorAll('.hl')) x.classList.remove('hl');
      if (!tr) return;
      const n = tableRows[+tr.dataset.i].node;
      for (const t of [n.token, n.type === 'attention_head' ? n.key_token : -1]) {
        if (t >= 0) for (const x of effectsPanel.querySelectorAll(`[data-token-index="${t}"]`)) x.classList.add('hl');
      }
    };
    const body = el('tbody', { onmouseover: e => mark(e.target.closest('tr.node')), onmouseleave: () => mark(null), onclick: e => { const tr = e.target.closest('tr.node'); if (tr && !e.target.closest('a,button,input')) { const i = +tr.dataset.i; select(i); toggleDetail(i); } } });
    body.innerHTML = html;
    const table = el('table.data', { 'data-testid': 'node-table' }, el('thead', head1, head2), body);
    put(tablePanel,
      el('div.panel-head', el('h2', 'Nodes'), el('span.muted.small', `${resp.nodes.length} nodes: top and bottom ${state.k} of each column${cmp ? ' and of each difference' : ''} · gradients of ${resp.scalar}`),
        el('span.spacer'), el('span.small.muted', el('kbd', 'j'), ' ', el('kbd', 'k'), ' move ', el('kbd', 'Enter'), ' details ', el('kbd', 'a'), ' ablate ', el('kbd', 't'), ' trace')),
      el('div.tablewrap', table));
    tableRows = rows;
    selected = -1;
    if (state.open) {
      const i = rows.findIndex(r => r.name === state.open);
      if (i >= 0) { select(i, false); toggleDetail(i, true); }
    }
  }
  let tableRows = [];

  // paintTiming records the time from the response to the painted page
  // (layout forced now, paint done at the next frame) in window.__tdbTiming.
  function paintTiming(t0, rows, domMs) {
    document.body.offsetHeight;
    requestAnimationFrame(() => setTimeout(() => {
      const ms = performance.now() - t0;
      window.__tdbTiming = { render_ms: ms, dom_ms: domMs, rows };
    }, 0));
  }

  function select(i, scroll = true) {
    const trs = tablePanel.querySelectorAll('tr.node');
    if (!trs.length) return;
    i = Math.max(0, Math.min(trs.length - 1, i));
    trs[selected]?.classList.remove('sel');
    selected = i;
    trs[i].classList.add('sel');
    if (scroll) trs[i].scrollIntoView({ block: 'nearest' });
  }

  // remember keeps the open row in the URL (replacing the entry: opening
  // a row is not a step worth a Back press).
  function remember(name) {
    state.open = name;
    history.replaceState(null, '', stateURL(state));
  }

  // Token views come from the debugger's inspect list. The first row
  // opened asks for it and the next DETAIL_BATCH-1 rows of the table in one
  // request (one forward pass; inspect changes no other number), so that
  // opening the rows below answers from memory.
  const DETAIL_BATCH = 16;
  let details = { of: null, byName: new Map() };
  function nodeDetail(i) {
    if (details.of !== last) details = { of: last, byName: new Map() };
    const name = tableRows[i].name;
    if (!details.byName.has(name)) {
      const batch = [];
      for (let j = i; j < tableRows.length && batch.length < DETAIL_BATCH; j++) {
        const r = tableRows[j];
        if (r.node.type !== 'embedding' && !details.byName.has(r.name)) batch.push(r);
      }
      const p = runTDB({ ...last.req, inspect: batch.map(r => r.node) }).then(({ resp }) => resp.details || []);
      const mine = details.byName;
      batch.forEach((r, k) => mine.set(r.name, p.then(ds => ds[k])));
      p.catch(() => batch.forEach(r => mine.delete(r.name)));
    }
    return details.byName.get(name);
  }

  async function toggleDetail(i, forceOpen) {
    const tr = tablePanel.querySelectorAll('tr.node')[i];
    if (!tr) return;
    const next = tr.nextElementSibling;
    if (next && next.classList.contains('detail')) { if (!forceOpen) { next.remove(); remember(''); } return; }
    const row = tableRows[i];
    remember(row.name);
    const ncols = tr.children.length;
    const cell = el('td', { colspan: ncols });
    const dtr = el('tr.detail', { 'data-detail-for': row.name }, cell);
    tr.after(dtr);
    const n = row.node;
    const isHead = n.type === 'attention_head';
    const abName = isHead ? nodeName({ ...n, key_token: -1 }) : row.name;
    const abVal = el('input', { type: 'number', step: 'any', value: 0, style: { width: '4.5rem' }, title: 'value to set' });
    const link = el('a.btn.small', { hidden: true }, 'component page →');
    const explained = el('div.explanations');
    componentLink(n).then(async h => {
      if (!h) return;
      link.href = h; link.hidden = false;
      try {
        const xs = await api('/api/v1/explanations/' + h.slice(3));
        if (xs.length) put(explained, el('h3', 'Explanation'), explanationList(xs.slice(0, 1)));
      } catch { /* the component page shows the error */ }
    });
    const traceBtn = (label, path) => el('button.small', { 'data-action': 'trace' + (path ? '-' + path : ''), onclick: () => go({ ...state, trace: row.name + (path ? ':' + path : ''), open: '' }) }, label);
    cell.append(el('div.actions',
      el('button.small', { 'data-action': 'ablate', onclick: () => go({ ...state, ablate: [...state.ablate, abName + (Number(abVal.value) ? '=' + abVal.value : '')], open: '' }) }, `Ablate ${abName}`), el('span.muted.small', 'to'), abVal,
      n.type === 'embedding' ? null : isHead ? [el('span.muted.small', ' Trace through'), traceBtn('Q', 'q'), traceBtn('K', 'k'), traceBtn('QK', 'qk'), traceBtn('V', 'v'),
        el('button.small', { 'data-action': 'attention', onclick: () => go({ ...state, attn: nodeName({ ...n, key_token: -1 }) }) }, 'attention pattern')] : traceBtn('Trace', ''),
      link));
    const views = el('div.detail-grid', busy('loading token views'));
    cell.append(explained, views);
    if (n.type === 'embedding') { put(views, el('div.empty', 'Embeddings have no token views.')); return; }
    try {
      const d = await nodeDetail(i);
      if (!d) { put(views, el('div.empty', 'no token views')); return; }
      const list = (title, xs, color, signed, key) => xs && xs.length ? el('div', { 'data-list': key }, el('h3', title), el('div.toklist', (() => {
        const m = Math.max(...xs.map(x => Math.abs(x.score))) || 1;
        return xs.map(x => el('span.t', { style: { background: color(0.65 * x.score / m) }, 'data-score': x.score, 'data-tip': `${JSON.stringify(x.text)}${x.position !== undefined ? ' @' + x.position : ''}\n${fmt(x.score, 5)}` }, showToken(x.text), el('small', signed ? fmtSigned(x.score, 3) : fmt(x.score, 3))));
      })())) : null;
      put(views,
        list('Upvoted output tokens', d.upvoted, t => sequential(Math.abs(t)), true, 'upvoted'),
        list('Downvoted output tokens', d.downvoted, t => diverging(-Math.abs(t)), true, 'downvoted'),
        list('Input tokens that upvote it', d.input_tokens, t => sequential(t, [45, 91, 215]), true, 'input_tokens'),
        list('Attends to (keys of its query)', d.attended_to, t => sequential(t, PURPLE), false, 'attended_to'),
        list('Attended from (queries on its key)', d.attended_from, t => sequential(t, [224, 120, 0]), false, 'attended_from'),
      );
      if (!views.children.length) views.append(el('div.empty', 'no token views (activation 0)'));
      const act = (row.metrics.activation || {}).value;
      if (act < 0 && (d.upvoted || []).length) views.prepend(el('div.small.muted.span-all', 'Activation < 0: the node writes against its weights, so the lists are swapped and their scores negated (per unit of the write, upvoted positive).'));
    } catch (e) { put(views, el('div.error', e.message)); }
  }

  async function renderAttention() {
    if (!state.attn) { attnPanel.hidden = true; return; }
    attnPanel.hidden = false;
    let n;
    try { n = parseNode(state.attn); } catch (e) { put(attnPanel, el('div.error', e.message)); return; }
    put(attnPanel, el('div.panel-head', el('h2', `Attention pattern of ${nodeName({ ...n, token: -1 })}`), el('span.spacer'), el('button.ghost.small', { onclick: () => go({ ...state, attn: '' }) }, 'close')), busy());
    try {
      const a = await api('/api/v1/activations', { prompt: state.prompt, location: 'attn.heads', layer: n.layer, index: n.index });
      const T = a.tokens.length;
      const grid = el('table.attn-grid', { 'data-testid': 'attention-pattern' });
      grid.append(el('tr', el('th'), a.tokens.map((t, k) => el('th.k', { title: JSON.stringify(t.text) }, showToken(t.text)))));
      let off = 0;
      for (let q = 0; q < T; q++) {
        const tr = el('tr', el('th.q', { title: JSON.stringify(a.tokens[q].text) }, showToken(a.tokens[q].text)));
        for (let k = 0; k < T; k++) {
          if (k > q) { tr.append(el('td')); continue; }
          const v = a.activations[off + k];
          tr.append(el('td', { class: n.token === q ? 'on' : null, 'data-q': q, 'data-k': k, 'data-activation': v, style: { background: sequential(v, PURPLE) }, 'data-tip': `${JSON.stringify(a.tokens[q].text)} (${q}) → ${JSON.stringify(a.tokens[k].text)} (${k})\nprob ${fmt(v, 4)}` }));
        }
        off += q + 1;
        grid.append(tr);
      }
      attnPanel.lastChild.replaceWith(el('div', { style: { overflow: 'auto' } }, el('div.small.muted', 'rows: query token · columns: key token · colour: attention probability'), grid));
    } catch (e) { attnPanel.lastChild.replaceWith(el('div.error', e.message)); }
  }

  function renderRaw(req, resp) {
    const pre = el('pre');
    const d = el('details.raw', { ontoggle: () => { if (d.open && !pre.textContent) pre.textContent = JSON.stringify({ request: req, response: resp }, null, 1); } }, el('summary', 'Raw JSON: request and response (POST /api/v1/tdb)'), pre);
    put(rawPanel, d);
  }

  async function update(u) {
    state = readState(u);
    setForm();
    renderAblations();
    showError(err, null);
    if (!state.prompt) {
      for (const p of [lossPanel, candPanel, effectsPanel, tablePanel]) put(p);
      lossPanel.append(el('div.empty', 'Ask a question: a prompt, the token you expect (target) and one you do not (distractor).'),
        el('p', el('a', { href: stateURL({ ...readState(new URL('/tdb', location.href)), prompt: EXAMPLE.prompt, targets: EXAMPLE.target, distractors: EXAMPLE.distractor }) }, 'Try an example')));
      put(rawPanel); attnPanel.hidden = true;
      return;
    }
    if (info && !info.loaded) return; // the page already says so
    let req;
    try { req = buildRequest(state); } catch (e) { showError(err, e); return; }
    if (!state.targets.length) { showError(err, new Error('Add a target token: the token the model should predict.')); return; }
    if (abort) abort.abort();
    abort = new AbortController();
    put(status, busy('running the model'));
    submit.disabled = true;
    try {
      const { resp } = await runTDB(req, abort.signal);
      const t0 = performance.now();
      // Only the view changed (sort, open row, attention head): keep the other panels.
      const same = last && last.resp === resp;
      const attnChanged = !last || last.attn !== state.attn;
      last = { req, resp, attn: state.attn };
      if (!same) {
        renderLoss(req, resp);
        renderEffects(resp);
        renderRaw(req, resp);
      }
      renderTable(req, resp);
      if (!same || attnChanged) renderAttention();
      paintTiming(t0, resp.nodes.length, performance.now() - t0);
      put(status);
    } catch (e) {
      if (e.name === 'AbortError') return;
      put(status);
      showError(err, e);
      for (const p of [lossPanel, candPanel, effectsPanel, tablePanel, rawPanel]) put(p);
      lossPanel.append(el('div.empty', 'No result.'));
    } finally { submit.disabled = false; }
  }

  const onKey = e => {
    if ((e.ctrlKey || e.metaKey) && e.key === 'Enter') { e.preventDefault(); submitForm(); return; }
    if (isTyping(e) || e.ctrlKey || e.metaKey || e.altKey || document.querySelector('.overlay')) return;
    const n = tableRows.length;
    if (!n) return;
    if (e.key === 'j' || e.key === 'ArrowDown' && e.shiftKey) { e.preventDefault(); select(selected + 1); }
    else if (e.key === 'k' || e.key === 'ArrowUp' && e.shiftKey) { e.preventDefault(); select(selected < 0 ? 0 : selected - 1); }
    else if (e.key === 'Enter' && selected >= 0) { e.preventDefault(); toggleDetail(selected); }
    else if (e.key === 'a' && selected >= 0) {
      const r = tableRows[selected];
      if (r.node.type === 'embedding') return;
      const name = r.node.type === 'attention_head' ? nodeName({ ...r.node, key_token: -1 }) : r.name;
      go({ ...state, ablate: [...state.ablate, name] });
    } else if (e.key === 't' && selected >= 0) {
      const r = tableRows[selected];
      if (r.node.type !== 'embedding') go({ ...state, trace: r.name });
    } else if (e.key === 'c' && selected >= 0) {
      componentLink(tableRows[selected].node).then(h => { if (h) navigate(h); });
    }
  };
  document.addEventListener('keydown', onKey);
  await update(url);
  return { cleanup: () => { document.removeEventListener('keydown', onKey); if (abort) abort.abort(); }, update: u => { update(u); } };
}
