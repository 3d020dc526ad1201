// Home (datasets, model, jump box), dataset, layer-table and search pages.
import { el, put, api, fmt, fmtInt, diverging, errorBox, showError, busy, getModelInfo, getDatasets, navigate, parseNode, locationsFor, showToken } from './util.js';
import { EXAMPLE } from './tdb.js';

const enc = encodeURIComponent;
const exampleTDB = '/tdb?' + new URLSearchParams([['prompt', EXAMPLE.prompt], ['target', EXAMPLE.target[0]], ['distractor', EXAMPLE.distractor[0]]]).toString().replace(/\+/g, '%20');

export async function renderHome(app) {
  const err = errorBox();
  const modelPanel = el('div.panel', el('h2', 'Model'), busy());
  const dsPanel = el('div.panel', el('div.panel-head', el('h2', 'Datasets')), busy());
  const jumpIn = el('input', { type: 'text', placeholder: 'mlp_L5_123   or   dataset/mlp.post_act/5/123', 'data-focus': true, style: { width: '100%' }, 'data-testid': 'jump' });
  const searchIn = el('input', { type: 'search', placeholder: '" Paris"', style: { width: '100%' } });
  put(app,
    el('div.page-head', el('h1', 'Transformer Debugger'), el('span.muted', 'why does the model say this? what makes this neuron fire?')),
    err,
    el('div.hero',
      el('div', dsPanel),
      el('div', modelPanel,
        el('div.panel', el('h2', 'Jump to a component'),
          el('form', { onsubmit: e => { e.preventDefault(); jump(jumpIn.value).catch(x => showError(err, x)); } }, el('div.row', el('div.grow', jumpIn), el('button.primary', 'Go')))),
        el('div.panel', el('h2', 'Search the datasets'),
          el('form', { onsubmit: e => { e.preventDefault(); navigate('/search?token=' + enc(searchIn.value)); } }, el('div.row', el('div.grow', searchIn), el('button', 'Search by token'))),
          el('div.small.muted', { style: { marginTop: '.3rem' } }, 'Components whose top records fire on a token.')))),
  );
  getModelInfo().then(info => {
    if (!info.loaded) { put(modelPanel, el('h2', 'Model'), el('div.empty', 'No model loaded: start tdb serve with --model to use the debugger.')); return; }
    const c = info.config;
    const ae = Object.entries(info.autoencoders || {}).filter(([, v]) => v && v.length);
    put(modelPanel, el('div.panel-head', el('h2', 'Model'), el('span.spacer'), el('a.btn.primary', { href: exampleTDB }, 'Open the debugger →')),
      el('div.stats', [['name', info.name], ['layers', c.n_layer], ['heads', c.n_head], ['d_model', c.n_embd], ['d_mlp', c.n_inner], ['context', c.n_positions], ['parameters', (info.params / 1e6).toFixed(1) + 'M'], ['max prompt', info.max_prompt_tokens + ' tok']]
        .map(([k, v]) => el('div.stat', el('div.k', k), el('div.v', String(v))))),
      info.random ? el('div.warn', { style: { marginTop: '.6rem' } }, 'Random weights: the model is GPT-2-shaped but untrained, its outputs are meaningless.') : null,
      ae.length ? el('div.small', { style: { marginTop: '.5rem' } }, 'Autoencoders: ', ae.map(([k, v]) => el('span.pill', `${k}: ${v.join(', ')}`))) : null);
  }).catch(e => showError(err, e));
  try {
    const sets = await getDatasets();
    put(dsPanel, el('div.panel-head', el('h2', 'Datasets'), el('span.muted.small', `${sets.length} in the store`)),
      sets.length ? el('div.tablewrap', el('table.data', { 'data-testid': 'datasets' },
        el('thead', el('tr', ['Dataset', 'Model', 'Corpus', 'Tokens', 'n_ctx', 'Locations'].map((h, i) => el(i < 3 || i === 5 ? 'th.l' : 'th', h)))),
        el('tbody', sets.map(d => el('tr', { 'data-dataset': d.name },
          el('td.l', el('a', { href: `/datasets/${enc(d.name)}` }, d.name)), el('td.l', d.model), el('td.l', { style: { maxWidth: '16rem', overflow: 'hidden', textOverflow: 'ellipsis' }, title: d.corpus }, d.corpus),
          el('td', fmtInt(d.tokens)), el('td', d.n_ctx),
          el('td.l', (d.locations || []).map(l => el('a.pill', { href: `/l/${enc(d.name)}/${enc(l.name || l)}/${(l.layers || [0])[0]}` }, `${l.name || l}${l.layers ? ` ×${l.layers.length}` : ''}`)))))))) : el('div.empty', 'No datasets yet: tdb collate writes them.'));
  } catch (e) {
    put(dsPanel, el('h2', 'Datasets'), el('div.empty', e.status === 503 ? e.message : 'Cannot list datasets: ' + e.message));
  }
}

// jump resolves a node name or a dataset path.
async function jump(v) {
  v = v.trim();
  if (!v) return;
  if (v.includes('/')) { navigate('/c/' + v.replace(/^\/?(c\/)?/, '')); return; }
  const n = parseNode(v.split('@')[0]);
  const [info, sets] = await Promise.all([getModelInfo().catch(() => ({ datasets: [] })), getDatasets()]);
  const want = locationsFor(n.type);
  for (const name of [...(info.datasets || []), ...sets.map(d => d.name)]) {
    const d = sets.find(x => x.name === name);
    const loc = d && (d.locations || []).find(l => want(l.name || l));
    if (loc) { navigate(`/c/${enc(d.name)}/${enc(loc.name || loc)}/${n.layer}/${n.index}`); return; }
  }
  throw new Error(`no dataset has a location for ${v}`);
}

export async function renderDataset(app, url) {
  const name = decodeURIComponent(url.pathname.split('/')[2] || '');
  const err = errorBox();
  put(app, el('div.page-head', el('h1', name), el('span.crumbs', el('a', { href: '/' }, 'datasets'))), err);
  try {
    const m = await api(`/api/v1/datasets/${enc(name)}`);
    app.append(el('div.panel', el('div.stats', [['model', m.model], ['corpus', m.corpus], ['tokens', fmtInt(m.tokens)], ['n_ctx', m.n_ctx]].map(([k, v]) => el('div.stat', el('div.k', k), el('div.v', { style: { fontSize: '.85rem' } }, String(v)))))),
      ...(m.locations || []).map(l => el('div.panel', el('h2', l.name), el('div.small.muted', `${fmtInt(l.components)} components per layer${l.pairs ? ' · token-pair records' : ''}`),
        el('div', { style: { marginTop: '.5rem' } }, l.layers.map(L => el('a.btn.small', { href: `/l/${enc(name)}/${enc(l.name)}/${L}`, style: { marginRight: '.3rem' } }, `layer ${L}`))))));
  } catch (e) { showError(err, e); }
}

const SORTS = ['index', 'max', 'min', 'mean', 'variance', 'skewness', 'kurtosis', 'frac_nonzero'];
export async function renderLayer(app, url) {
  const [ds, loc, layer] = url.pathname.split('/').slice(2).map(decodeURIComponent);
  const q = url.searchParams;
  const sort = q.get('sort') || 'max', order = q.get('order') || 'desc', offset = +(q.get('offset') || 0), limit = 100;
  const err = errorBox();
  const body = el('div', busy());
  put(app, el('div.page-head', el('h1', `${loc} · layer ${layer}`), el('span.crumbs', el('a', { href: '/' }, 'datasets'), ' / ', el('a', { href: `/datasets/${enc(ds)}` }, ds))), err, body);
  try {
    const data = await api(`/api/v1/datasets/${enc(ds)}/${enc(loc)}/${enc(layer)}?sort=${sort}&order=${order}&limit=${limit}&offset=${offset}`);
    const comps = Array.isArray(data) ? data : (data.components || data.items || []);
    const total = data.total ?? null;
    const link = (s, o, off = 0) => `/l/${enc(ds)}/${enc(loc)}/${layer}?sort=${s}&order=${o}&offset=${off}`;
    const th = k => el('th' + (k === 'index' ? '.l' : '') + (SORTS.includes(k) ? '.sortable' : ''), SORTS.includes(k) ? { 'data-sort': k, onclick: () => navigate(link(k, sort === k && order === 'desc' ? 'asc' : 'desc')) } : {}, k, sort === k ? el('span.arrow', order === 'asc' ? '▲' : '▼') : null);
    const keys = ['index', 'max', 'min', 'mean', 'variance', 'skewness', 'kurtosis', 'frac_nonzero'];
    const colMax = {};
    for (const k of keys.slice(1)) colMax[k] = Math.max(0, ...comps.map(cp => Math.abs((cp.stats || cp)[k] || 0)));
    put(body, el('div.panel', el('div.panel-head', el('h2', 'Components'), el('span.muted.small', `sorted by ${sort} ${order}${total != null ? ` · ${offset + 1}–${offset + comps.length} of ${total}` : ''}`), el('span.spacer'),
      offset > 0 ? el('a.btn.small', { href: link(sort, order, Math.max(0, offset - limit)) }, '← prev') : null, comps.length === limit ? el('a.btn.small', { href: link(sort, order, offset + limit) }, 'next →') : null),
    el('div.tablewrap', el('table.data', { 'data-testid': 'layer-table' }, el('thead', el('tr', keys.map(th))),
      el('tbody', comps.map(cp => {
        const s = cp.stats || cp;
        const idx = cp.index ?? cp.component;
        return el('tr', { 'data-component': idx }, el('td.l', el('a', { href: `/c/${enc(ds)}/${enc(loc)}/${layer}/${idx}` }, `#${idx}`)), keys.slice(1).map(k => {
          const t = s[k] / (colMax[k] || 1);
          return el('td', { 'data-col': k, 'data-value': s[k], style: { background: diverging(t * 0.4) } }, k === 'frac_nonzero' && s[k] != null ? (100 * s[k]).toFixed(2) + '%' : fmt(s[k]));
        }));
      }))))));
  } catch (e) { put(body); showError(err, e); }
}

export async function renderSearch(app, url) {
  const q = url.searchParams;
  const err = errorBox();
  const dsSel = el('select');
  const tokenIn = el('input', { type: 'search', value: q.get('token') || '', placeholder: 'token, e.g. " Paris"', 'data-focus': true });
  const textIn = el('input', { type: 'search', value: q.get('text') || '', placeholder: 'text in the context' });
  const body = el('div');
  put(app, el('div.page-head', el('h1', 'Search')),
    el('form.panel', { onsubmit: e => { e.preventDefault(); const p = new URLSearchParams({ dataset: dsSel.value }); if (tokenIn.value) p.set('token', tokenIn.value); if (textIn.value) p.set('text', textIn.value); navigate('/search?' + p.toString().replace(/\+/g, '%20')); } },
      el('div.row', el('label.field', 'Dataset', dsSel), el('label.field.grow', 'Token (the max-activation token of top records)', tokenIn), el('label.field.grow', 'or text', textIn), el('button.primary', 'Search'))),
    err, body);
  let sets = [];
  try { sets = await getDatasets(); } catch (e) { showError(err, e); return; }
  put(dsSel, ...sets.map(d => el('option', { value: d.name }, d.name)));
  const ds = q.get('dataset') || sets[0]?.name;
  if (ds) dsSel.value = ds;
  if (!ds || (!q.get('token') && !q.get('text'))) { body.append(el('div.empty', sets.length ? 'Search for components whose top records fire on a token, or whose contexts contain a text.' : 'No datasets to search.')); return; }
  put(body, busy('searching'));
  try {
    const p = new URLSearchParams();
    for (const k of ['token', 'text', 'location', 'layer', 'limit']) if (q.get(k)) p.set(k, q.get(k));
    const data = await api(`/api/v1/datasets/${enc(ds)}/search?${p}`);
    const hits = data.hits || [];
    if (!hits.length) { put(body, el('div.panel', el('div.empty', `No components found${data.layers != null ? ` in ${data.layers} layers` : ''}.`))); return; }
    put(body, el('div.panel', el('div.panel-head', el('h2', `${hits.length} components`), el('span.muted.small', q.get('token') ? 'ranked by the max activation of top records that peak on the token' : 'whose top records contain the text')),
      el('div.search', { 'data-testid': 'search-results' }, hits.map(h => {
        const ev = h.evidence || {};
        const strs = ev.token_strings || (ev.tokens || []).map(t => '#' + t);
        const href = `/c/${enc(ds)}/${enc(h.location)}/${h.layer}/${h.index}`;
        return el('div.record', { 'data-hit': `${h.location}/${h.layer}/${h.index}` },
          el('div.meta', el('b', fmt(h.score, 4)), el('a', { href }, `${h.location}\n${h.layer}:${h.index}`), h.matches > 1 ? `\n${h.matches} records` : ''),
          el('div.heat', strs.map((t, i) => el('span', { 'data-token-index': i, class: i === ev.position ? 'peak' : null, style: i === ev.position ? { background: 'rgb(140, 196, 165)' } : {}, 'data-tip': `${i}: ${JSON.stringify(t)}` }, showToken(t)))));
      }))));
  } catch (e) { put(body); showError(err, e); }
}
