// Token heatmaps of dataset records: per-token components colour each
// token by activation / max activation; head (pair) records colour each
// token by its strongest pair as query and, on hover, show what attends
// to the hovered token.
import { el, fmt, sequential, diverging, inkFor, showToken, BLUE, ORANGE } from './util.js';

// tokenValues returns the per-token values shown for a record (pairs: the
// row maximum, the strongest key for each query) and a pair accessor.
export function tokenValues(acts, n, pairs) {
  if (!pairs) return { values: acts.slice(0, n), pair: null };
  const values = [];
  const rowStart = q => q * (q + 1) / 2;
  for (let q = 0; q < n; q++) {
    let m = -Infinity;
    for (let k = 0; k <= q; k++) m = Math.max(m, acts[rowStart(q) + k] ?? -Infinity);
    values.push(m === -Infinity ? 0 : m);
  }
  return { values, pair: (q, k) => acts[rowStart(q) + k] };
}

// heatmap renders tokens as spans carrying data-token-index and data-activation.
export function heatmap(strings, acts, { max, pairs = false, peak = true } = {}) {
  const n = strings.length;
  const { values, pair } = tokenValues(acts, n, pairs);
  const scale = max && max > 0 ? max : Math.max(1e-9, ...values.map(Math.abs));
  let pk = 0;
  values.forEach((v, i) => { if (v > values[pk]) pk = i; });
  // Negative activations (GELU's small dip) get a faint red: the scale is for the positive side.
  const color = v => v >= 0 ? sequential(v / scale, pairs ? BLUE : undefined) : diverging(Math.max(-1, v / scale) * 0.35);
  const spans = strings.map((s, i) => {
    const v = values[i];
    const t = v / scale;
    return el('span', {
      'data-token-index': i, 'data-activation': v, class: peak && i === pk && v > 0 ? 'peak' : null,
      'data-tip': `${i}: ${JSON.stringify(s)}\n${pairs ? 'max attention from it ' : 'activation '}${fmt(v, 5)}${scale ? ` (${(100 * t).toFixed(0)}% of max)` : ''}${pairs ? '\nhover: what attends to it' : ''}`,
      style: { background: color(v), color: inkFor(Math.min(1, t) * 0.95) },
    }, showToken(s));
  });
  const box = el('div.heat', spans);
  if (pairs) {
    box.addEventListener('mouseover', e => {
      const sp = e.target.closest('[data-token-index]');
      if (!sp) return;
      const k = +sp.dataset.tokenIndex;
      spans.forEach((x, q) => {
        if (q < k) { x.style.background = '#fff'; x.style.color = '#aaa'; return; }
        const v = pair(q, k) ?? 0;
        x.style.background = q === k ? sequential(v / scale, ORANGE) : sequential(v / scale, ORANGE);
        x.style.color = inkFor(v / scale);
        x.dataset.tip = `${q}: ${JSON.stringify(strings[q])} → ${k}: ${JSON.stringify(strings[k])}\nattention ${fmt(v, 5)}`;
      });
      sp.style.outline = '2px solid ' + `rgb(${ORANGE.join(',')})`;
    });
    box.addEventListener('mouseleave', () => {
      spans.forEach((x, i) => {
        const v = values[i];
        x.style.background = color(v); x.style.color = inkFor(v / scale); x.style.outline = '';
        x.dataset.tip = `${i}: ${JSON.stringify(strings[i])}\nmax attention from it ${fmt(v, 5)}\nhover: what attends to it`;
      });
    });
  }
  return box;
}

// recordView is one record row: rank, max activation, source, heatmap.
export function recordView(r, id, opts) {
  const strings = r.token_strings || (r.tokens || []).map(t => `#${t}`);
  return el('div.record', { 'data-record': id, 'data-max': r.max_activation },
    el('div.meta', el('b', fmt(r.max_activation, 4)), r.source ? `doc ${r.source.doc}\n@${r.source.offset}` : ''),
    heatmap(strings, r.activations || [], opts));
}
