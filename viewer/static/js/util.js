// Small DOM, number-formatting, colour and API helpers shared by the pages.

// el builds an element: el('div.cls#id', {attr: v, onclick: f}, children...).
export function el(spec, attrs, ...kids) {
  const m = spec.match(/^([a-z0-9]+)?((?:[.#][\w-]+)*)$/i);
  const node = document.createElement(m && m[1] ? m[1] : 'div');
  if (m && m[2]) {
    for (const part of m[2].match(/[.#][\w-]+/g)) {
      if (part[0] === '.') node.classList.add(part.slice(1)); else node.id = part.slice(1);
    }
  }
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) { kids.unshift(attrs); attrs = null; }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (k === 'style' && typeof v === 'object') Object.assign(node.style, v);
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k in node && k !== 'list' && typeof v !== 'string') node[k] = v;
    else node.setAttribute(k, v === true ? '' : v);
  }
  append(node, kids);
  return node;
}

function append(node, kids) {
  for (const k of kids) {
    if (k == null || k === false) continue;
    if (Array.isArray(k)) append(node, k);
    else node.append(k instanceof Node ? k : String(k));
  }
}

// fmt formats a number compactly with ~4 significant digits.
export function fmt(x, digits = 4) {
  if (x == null || Number.isNaN(x)) return '–';
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1e5 || a < 1e-3) return x.toExponential(2).replace('e+', 'e');
  return Number(x.toPrecision(digits)).toString();
}
export function fmtSigned(x, digits = 3) {
  if (x == null) return '–';
  const s = fmt(x, digits);
  return x > 0 ? '+' + s : s;
}
export function fmtInt(x) { return x == null ? '–' : Number(x).toLocaleString('en-US'); }

// Colour scales. t is in [-1, 1] (diverging) or [0, 1] (sequential).
const POS = [26, 127, 75], NEG = [194, 58, 43];
function mix(rgb, t) {
  t = Math.max(0, Math.min(1, t));
  const c = rgb.map(v => Math.round(255 + (v - 255) * t));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}
export function diverging(t) { return t >= 0 ? mix(POS, Math.pow(t, 0.8) * 0.75) : mix(NEG, Math.pow(-t, 0.8) * 0.75); }
export function sequential(t, rgb = [26, 127, 75]) { return mix(rgb, Math.max(0, t) * 0.85); }
export const BLUE = [45, 91, 215], ORANGE = [224, 120, 0], PURPLE = [120, 60, 190];
export function inkFor(t) { return Math.abs(t) > 0.72 ? '#fff' : ''; }

// showToken makes whitespace visible in a token's display text.
export function showToken(s) {
  if (s == null) return '';
  return s.replace(/\n/g, '⏎').replace(/\t/g, '⇥') || '∅';
}
export function tokChip(text, attrs = {}) { return el('span.tok', { title: JSON.stringify(text), ...attrs }, showToken(text)); }

// ApiError carries the server's message and status.
export class ApiError extends Error {
  constructor(message, status, type) { super(message); this.status = status; this.type = type; }
}

// api calls the JSON API and unwraps the {status, data} envelope.
export async function api(path, body, opts = {}) {
  const init = { method: body === undefined ? 'GET' : 'POST', headers: {}, signal: opts.signal };
  if (body !== undefined) { init.headers['Content-Type'] = 'application/json'; init.body = JSON.stringify(body); }
  let res;
  try { res = await fetch(path, init); } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(`cannot reach the tdb server (${e.message})`, 0, 'network');
  }
  let j = null;
  const text = await res.text();
  try { j = JSON.parse(text); } catch { /* not JSON */ }
  if (!res.ok || (j && j.status === 'error')) {
    let msg = j && j.error ? j.error : `${res.status} ${res.statusText}${text && !j ? ': ' + text.slice(0, 200) : ''}`;
    if (res.status === 503 && !(j && j.error)) msg = 'the server is busy, try again in a moment';
    throw new ApiError(msg, res.status, j && j.errorType);
  }
  return j && 'data' in j ? j.data : j;
}

// tooltip shows text near the pointer for any element with data-tip.
const tip = () => document.getElementById('tooltip');
export function installTooltip() {
  document.addEventListener('mouseover', e => {
    const t = e.target.closest && e.target.closest('[data-tip]');
    const box = tip();
    if (!t) { box.hidden = true; return; }
    box.textContent = t.dataset.tip;
    box.hidden = false;
  });
  document.addEventListener('mousemove', e => {
    const box = tip();
    if (box.hidden) return;
    const x = Math.min(e.clientX + 14, window.innerWidth - box.offsetWidth - 8);
    const y = e.clientY + 18 + box.offsetHeight > window.innerHeight ? e.clientY - box.offsetHeight - 10 : e.clientY + 18;
    box.style.left = x + 'px'; box.style.top = y + 'px';
  });
}

// errorBox is the page's [data-testid=error] element.
export function errorBox() { return el('div.error', { 'data-testid': 'error', role: 'alert' }); }
export function showError(box, err) {
  box.textContent = err ? (err.message || String(err)) : '';
}

export function busy(text = 'running') { return el('span.busy', text); }

// Node helpers (names as tdb debug prints them).
export function nodeName(n) {
  const at = n.token >= 0 ? '@' + n.token : '';
  switch (n.type) {
    case 'embedding': return 'emb' + at;
    case 'mlp_neuron': return `mlp_L${n.layer}_${n.index}${at}`;
    case 'attention_head': return `attn_L${n.layer}_${n.index}${at}${n.token >= 0 && n.key_token >= 0 ? '>' + n.key_token : ''}`;
    case 'mlp_autoencoder_latent': return `mlp_ae_L${n.layer}_${n.index}${at}`;
    case 'attention_autoencoder_latent': return `attn_ae_L${n.layer}_${n.index}${at}`;
  }
  return n.type;
}
const NODE_RE = /^(mlp|attn|mlp_ae|attn_ae)_L(\d+)_(\d+)(?:@(\d+)(?:>(\d+))?)?$/;
const TYPES = { mlp: 'mlp_neuron', attn: 'attention_head', mlp_ae: 'mlp_autoencoder_latent', attn_ae: 'attention_autoencoder_latent' };
export function parseNode(s) {
  const m = NODE_RE.exec(s.trim());
  if (!m) throw new Error(`bad node "${s}": want mlp_L<layer>_<neuron>[@<token>], attn_L<layer>_<head>[@<query>[><key>]], mlp_ae_L…, attn_ae_L…`);
  const n = { type: TYPES[m[1]], layer: +m[2], index: +m[3], token: m[4] ? +m[4] : -1 };
  n.key_token = m[5] ? +m[5] : -1;
  if (m[5] && n.type !== 'attention_head') throw new Error(`bad node "${s}": only attention heads have a key token`);
  return n;
}
export const KIND_LABEL = { mlp_neuron: 'mlp', attention_head: 'attn', mlp_autoencoder_latent: 'mlp ae', attention_autoencoder_latent: 'attn ae', embedding: 'emb' };

// Cached GET /api/v1/model.
let modelInfo = null;
export async function getModelInfo() {
  if (!modelInfo) modelInfo = api('/api/v1/model').catch(e => { modelInfo = null; throw e; });
  return modelInfo;
}
let datasetsList = null;
export async function getDatasets() {
  if (!datasetsList) datasetsList = api('/api/v1/datasets').catch(e => { datasetsList = null; throw e; });
  return datasetsList;
}

// locationFor names the dataset location of a node type.
export function locationsFor(type) {
  switch (type) {
    case 'mlp_neuron': return l => l === 'mlp.post_act';
    case 'attention_head': return l => l === 'attn.heads';
    case 'mlp_autoencoder_latent': return l => l.startsWith('ae.') && /mlp/.test(l);
    case 'attention_autoencoder_latent': return l => l.startsWith('ae.') && /attn/.test(l);
  }
  return () => false;
}
// componentLink finds a dataset (preferring the --dataset ones) with the node's location.
export async function componentLink(n) {
  let info, sets;
  try { [info, sets] = await Promise.all([getModelInfo(), getDatasets()]); } catch { return null; }
  const want = locationsFor(n.type);
  const order = [...(info.datasets || []), ...sets.map(d => d.name)];
  for (const name of order) {
    const d = sets.find(x => x.name === name);
    if (!d) continue;
    const loc = (d.locations || []).find(l => want(l.name || l));
    if (loc) return `/c/${encodeURIComponent(d.name)}/${encodeURIComponent(loc.name || loc)}/${n.layer}/${n.index}`;
  }
  return null;
}

// navigate pushes a URL and re-renders (set by main.js).
export let navigate = (url) => { location.href = url; };
export function setNavigate(f) { navigate = f; }

// isTyping says whether a key event belongs to a text field.
export function isTyping(e) {
  const t = e.target;
  return t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT' || t.isContentEditable);
}

// put replaces a node's children, skipping null/false and flattening arrays.
export function put(node, ...kids) {
  node.replaceChildren();
  append(node, kids);
  return node;
}
