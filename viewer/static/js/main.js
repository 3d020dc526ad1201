// Router: every page is a function of the URL, so links reproduce a view
// and back/forward work. Pages render into #app and may return a cleanup.
import { el, put, installTooltip, setNavigate, getModelInfo, isTyping } from './util.js';
import { renderTDB } from './tdb.js';
import { renderComponent } from './component.js';
import { renderHome, renderSearch, renderLayer, renderDataset } from './home.js';

const app = document.getElementById('app');
let cleanup = null;
let current = null; // {path, page}

function route(url) {
  const p = url.pathname;
  if (p === '/' ) return ['home', renderHome];
  if (p === '/tdb') return ['tdb', renderTDB];
  if (p.startsWith('/c/')) return ['component', renderComponent];
  if (p === '/search') return ['search', renderSearch];
  if (p.startsWith('/l/')) return ['layer', renderLayer];
  if (p.startsWith('/datasets/')) return ['dataset', renderDataset];
  return ['404', (a) => { put(a, el('div.error', { 'data-testid': 'error' }, `No page at ${p}.`)); }];
}

async function render() {
  const url = new URL(location.href);
  const [name, page] = route(url);
  for (const a of document.querySelectorAll('.topbar nav a')) {
    a.classList.toggle('active', new URL(a.href).pathname === url.pathname || (name === 'component' && a.getAttribute('href') === '/'));
  }
  // Same page, new state: let the page update in place when it can.
  if (current && current.name === name && current.update) {
    if (current.update(url) !== false) return;
  }
  if (cleanup) { try { cleanup(); } catch { /* ignore */ } }
  cleanup = null;
  current = { name };
  const res = await page(app, url);
  if (typeof res === 'function') cleanup = res;
  else if (res && typeof res === 'object') { cleanup = res.cleanup || null; current.update = res.update || null; }
}

function navigate(href, { replace = false } = {}) {
  const url = new URL(href, location.href);
  if (url.href === location.href && !replace) return render();
  if (replace) history.replaceState(null, '', url); else history.pushState(null, '', url);
  window.scrollTo({ top: 0 });
  return render();
}
setNavigate(navigate);

document.addEventListener('click', e => {
  const a = e.target.closest && e.target.closest('a[href]');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey || a.target) return;
  const url = new URL(a.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/') || url.pathname.startsWith('/static/')) return;
  e.preventDefault();
  navigate(url.href);
});
window.addEventListener('popstate', () => render());

// Keyboard help (?) lists the shortcuts of every page.
function showHelp() {
  if (document.querySelector('.overlay')) return;
  const keys = [
    ['?', 'this help'], ['g h / g t / g s', 'go to datasets / debugger / search'],
    ['/', 'focus the prompt or search box'],
    ['Debugger', ''], ['j / k', 'next / previous node row'], ['Enter', 'open / close the node\'s details'],
    ['a', 'ablate the selected node'], ['t', 'trace the selected node (heads: through QK)'], ['c', 'open the selected node\'s component page'],
    ['Ctrl+Enter', 'submit the prompt'],
    ['Component page', ''], ['← / →', 'previous / next component'], ['↑ / ↓', 'previous / next layer'], ['Esc', 'close dialogs'],
  ];
  const ov = el('div.overlay', { onclick: e => { if (e.target === ov) ov.remove(); } },
    el('div.panel', el('h2', 'Keyboard'), el('div.keys', keys.map(([k, v]) => v === '' ? [el('h3', { style: { gridColumn: '1 / 3' } }, k)] : [el('div', el('kbd', k)), el('div', v)]))));
  document.body.append(ov);
}
document.getElementById('help-btn').addEventListener('click', showHelp);
let gPending = false;
document.addEventListener('keydown', e => {
  if (e.key === 'Escape') { document.querySelector('.overlay')?.remove(); }
  if (isTyping(e) || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.key === '?') { e.preventDefault(); showHelp(); return; }
  if (gPending) {
    gPending = false;
    const to = { h: '/', t: '/tdb', s: '/search' }[e.key];
    if (to) { e.preventDefault(); navigate(to); }
    return;
  }
  if (e.key === 'g') { gPending = true; setTimeout(() => { gPending = false; }, 800); }
  if (e.key === '/') {
    const f = document.querySelector('[data-focus]');
    if (f) { e.preventDefault(); f.focus(); }
  }
});

installTooltip();
getModelInfo().then(info => {
  const b = document.getElementById('model-badge');
  if (!info.loaded) { put(b, 'no model loaded'); return; }
  const c = info.config;
  put(b, info.name, el('span.muted', ` · ${c.n_layer}L ${c.n_head}H d${c.n_embd}`), info.random ? el('span.random', { title: 'random weights: outputs are meaningless' }, 'RANDOM WEIGHTS') : null);
}).catch(() => {});
render();
