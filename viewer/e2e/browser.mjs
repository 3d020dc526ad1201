// Browser test of tdb serve, run by cmd/tdb's TestBrowser with one argument:
// a JSON file holding the server URL and the expected answers (tdb debug
// --json, tdb top --json) for the questions asked here. Prints progress,
// saves screenshots, and ends with "RESULT {json}"; exits 1 on a failure.
import { chromium } from 'playwright-core';
import { readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

const input = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const base = input.base;
mkdirSync(input.screenshots, { recursive: true });

const ctx = await chromium.launchPersistentContext(input.profile, {
  executablePath: input.chromium || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
  viewport: { width: 1440, height: 1000 },
});
const page = ctx.pages()[0] || await ctx.newPage();
const pageErrors = [];
page.on('pageerror', e => pageErrors.push(e.message));
page.on('console', m => { if (m.type() === 'error' && !/status of (4|5)\d\d/.test(m.text())) pageErrors.push(m.text()); });
page.setDefaultTimeout(20000);

const result = { render_ms: [], dom_ms: [], rows: 0, resort_ms: [], resort_rows: 0, long_ms: [], long_rows: 0 };
let failed = false;
function check(cond, msg) { if (!cond) throw new Error(msg); }
function close(a, b) { return Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(a), Math.abs(b)); }
async function step(name, fn) {
  const t0 = Date.now();
  try { await fn(); console.log(`ok   ${name} (${Date.now() - t0} ms)`); }
  catch (e) {
    failed = true;
    console.log(`FAIL ${name}: ${e.message}\n     at ${page.url()}`);
    await page.screenshot({ path: join(input.screenshots, 'failure-' + name.replace(/\W+/g, '-') + '.png'), fullPage: true }).catch(() => {});
  }
}
const shot = async (name) => { await page.evaluate(() => window.scrollTo(0, 0)); await page.mouse.move(0, 0); await page.screenshot({ path: join(input.screenshots, name + '.png'), fullPage: true }); };
const q = (params) => base + '/tdb?' + new URLSearchParams(params).toString().replace(/\+/g, '%20');
const question = { prompt: input.prompt, target: input.target, distractor: input.distractor, k: 20 };

async function readTable() {
  await page.waitForSelector('[data-testid=node-table] tr[data-node]');
  return page.$$eval('[data-testid=node-table] tr[data-node]', rows => rows.map(r => ({
    name: r.dataset.node,
    cells: Object.fromEntries([...r.querySelectorAll('td[data-col]')].map(td => [td.dataset.col, Number(td.dataset.value)])),
  })));
}
// compareTable checks the page's node table against a debugger response.
async function compareTable(expected, mode) {
  const rows = await readTable();
  const byName = new Map(rows.map(r => [r.name, r]));
  check(rows.length === expected.nodes.length, `node table has ${rows.length} rows, tdb debug has ${expected.nodes.length}`);
  for (const n of expected.nodes) {
    const r = byName.get(n.name);
    check(r, `node ${n.name} missing from the page`);
    for (const col of expected.columns) {
      const m = n.metrics[col];
      if (!mode) { check(close(r.cells[col], m.value), `${n.name} ${col}: page ${r.cells[col]}, tdb debug ${m.value}`); continue; }
      check(close(r.cells[col + ':value'], m.value), `${n.name} ${col}: page ${r.cells[col + ':value']}, tdb debug ${m.value}`);
      check(close(r.cells[col + ':diff'], m.diff ?? 0), `${n.name} ${col} diff: page ${r.cells[col + ':diff']}, tdb debug ${m.diff}`);
      check(close(r.cells[col + ':other'], m[mode] ?? 0), `${n.name} ${col} ${mode}: page ${r.cells[col + ':other']}, tdb debug ${m[mode]}`);
    }
  }
  return rows;
}
async function lossIs(v) {
  await page.waitForFunction(v => { const e = document.querySelector('[data-testid=loss]'); return e && Math.abs(Number(e.dataset.value) - v) <= 1e-6 * Math.max(1, Math.abs(v)); }, v);
}
async function timing() {
  const t = await page.waitForFunction(() => window.__tdbTiming).then(h => h.jsonValue());
  result.render_ms.push(Math.round(t.render_ms * 10) / 10);
  result.dom_ms.push(Math.round(t.dom_ms * 10) / 10);
  result.rows = Math.max(result.rows, t.rows);
  await page.evaluate(() => { window.__tdbTiming = null; });
}

await step('TDB page from a URL equals tdb debug --json', async () => {
  await page.goto(q(question));
  await compareTable(input.expected);
  await lossIs(input.expected.runs[0].loss);
  await timing();
  const shown = await page.textContent('[data-testid=loss]');
  check(Math.abs(Number(shown) - input.expected.runs[0].loss) < 1e-4, `loss shown as ${shown}, tdb debug ${input.expected.runs[0].loss}`);
  await shot('tdb');
});

await step('a next-token candidate becomes the distractor', async () => {
  await page.goto(q(question));
  await readTable();
  const cand = await page.getAttribute('[data-candidate]', 'data-candidate');
  await page.click('[data-candidate]');
  await page.waitForURL(u => new URL(u).searchParams.get('distractor') === cand);
  await page.waitForFunction(c => [...document.querySelectorAll('.chip.distractor')].some(x => x.dataset.token === c), cand);
  await page.goBack();
  await page.waitForURL(u => new URL(u).searchParams.get('distractor') === input.distractor);
});

await step('sorting by a column', async () => {
  await page.click('th[data-col=activation]');
  await page.waitForURL(/sort=activation/);
  const vals = (await readTable()).map(r => r.cells.activation);
  for (let i = 1; i < vals.length; i++) check(vals[i - 1] >= vals[i], `not sorted by activation descending at row ${i}: ${vals[i - 1]} < ${vals[i]}`);
  await page.goBack();
  await page.waitForURL(u => !/sort=/.test(u.search));
});

await step('re-rendering the node table (sorting, no server call)', async () => {
  await page.goto(q({ ...question, second: input.second }));
  await page.waitForSelector('td[data-col="activation:diff"]');
  await page.waitForFunction(() => window.__tdbTiming);
  for (const col of ['activation:value', 'write_norm:diff', 'act_times_grad:other', 'direction_write:value', 'activation:diff', 'write_norm:value', 'act_times_grad:value', 'direction_write:diff']) {
    await page.evaluate(() => { window.__tdbTiming = null; });
    await page.click(`th[data-col="${col}"]`);
    const t = await page.waitForFunction(() => window.__tdbTiming).then(h => h.jsonValue());
    result.resort_ms.push(Math.round(t.render_ms * 10) / 10);
    result.resort_rows = t.rows;
  }
});

await step('a 64-token prompt with top-k 10: response to painted page', async () => {
  const words = ' Mary and John went to the store, John gave a drink to';
  const prompt = '<|endoftext|>' + words.repeat(4) + ' and then at the end of the day Mary'; // 63 tokens
  for (let i = 0; i < 3; i++) {
    await page.goto(q({ prompt, target: input.target, distractor: input.distractor, x: i }));
    const t = await page.waitForFunction(() => window.__tdbTiming).then(h => h.jsonValue());
    const toks = await page.$$eval('.effects .heat', hs => hs[0].querySelectorAll('[data-token-index]').length);
    check(toks >= 50 && toks <= 64, `${toks} tokens in the heatmap`);
    result.long_ms.push(Math.round(t.render_ms * 10) / 10);
    result.long_rows = t.rows;
  }
});

await step('keyboard: j j Enter opens the second row', async () => {
  await page.goto(q(question));
  await readTable();
  await page.locator('body').click({ position: { x: 5, y: 200 } });
  await page.keyboard.press('j'); await page.keyboard.press('j'); await page.keyboard.press('Enter');
  const second = await page.$$eval('[data-testid=node-table] tr[data-node]', rs => rs[1].dataset.node);
  await page.waitForSelector(`tr.detail[data-detail-for="${second}"]`);
  const sel = await page.$eval('tr.node.sel', r => r.dataset.node);
  check(sel === second, `selected ${sel}, want ${second}`);
  await page.waitForSelector(`tr.detail[data-detail-for="${second}"] .toklist .t`);
  check(new URL(page.url()).searchParams.get('open') === second, 'the open row is not in the URL');
  await shot('tdb-detail');
  await page.keyboard.press('?');
  await page.waitForSelector('.overlay .keys');
  await page.keyboard.press('Escape');
  await page.waitForSelector('.overlay', { state: 'detached' });
});

await step('ablate a node from its row: diff columns equal tdb debug --ablate', async () => {
  await page.goto(q(question));
  await readTable();
  await page.click(`tr[data-node="${input.ablate}"] td.name`);
  await page.click(`tr[data-detail-for="${input.ablate}"] [data-action=ablate]`);
  await page.waitForURL(/ablate=/);
  await page.waitForSelector('td[data-col="activation:diff"]');
  const rows = await compareTable(input.ablated, 'baseline');
  check(rows.some(r => r.cells['act_times_grad:diff'] !== 0), 'every diff is 0: the ablation changed nothing on the page');
  await lossIs(input.ablated.runs[0].loss);
  await timing();
  check((await page.textContent('[data-testid=ablations]')).includes(input.ablate), 'ablations table does not list the node');
  await shot('tdb-ablated');
  await page.goBack();
  await page.waitForURL(u => !u.search.includes('ablate='));
  await page.waitForFunction(() => !document.querySelector('td[data-col="activation:diff"]') && document.querySelector('[data-testid=node-table]'));
  await lossIs(input.expected.runs[0].loss);
  await page.goForward();
  await page.waitForSelector('td[data-col="activation:diff"]');
  await lossIs(input.ablated.runs[0].loss);
  await page.click('[data-testid=remove-ablation]');
  await page.waitForURL(u => !u.search.includes('ablate='));
  await lossIs(input.expected.runs[0].loss);
});

await step('trace a head through Q equals tdb debug --trace :q', async () => {
  await page.goto(q(question));
  await readTable();
  await page.click(`tr[data-node="${input.trace}"] td.name`);
  await page.click(`tr[data-detail-for="${input.trace}"] [data-action=trace-q]`);
  await page.waitForURL(/trace=/);
  await lossIs(input.traced.runs[0].loss);
  await compareTable(input.traced);
  await timing();
  check((await page.textContent('[data-testid=trace]')).includes(input.trace + ':q'), 'trace box does not show the traced node');
  await shot('tdb-trace');
  await page.click('[data-testid=clear-trace]');
  await lossIs(input.expected.runs[0].loss);
});

await step('second prompt: Left / Diff / Right equal tdb debug --second-prompt', async () => {
  await page.goto(q({ ...question, second: input.second }));
  await page.waitForSelector('td[data-col="activation:diff"]');
  await compareTable(input.twoPrompts, 'right');
  await lossIs(input.twoPrompts.runs[0].loss);
  await timing();
  const heads = await page.$$eval('[data-testid=node-table] th', ths => ths.map(t => t.textContent));
  check(heads.some(h => h.startsWith('Left')) && heads.some(h => h.startsWith('Right')), 'no Left / Right columns: ' + heads.join(','));
  const outlined = await page.$$eval('.heat span.pinned', s => s.length);
  check(outlined > 0, 'the differing token is not outlined');
  await shot('tdb-two-prompts');
});

await step('autoencoder switch equals tdb debug --mlp-autoencoders', async () => {
  await page.goto(q(question));
  await readTable();
  await page.check('[data-testid=mlp-ae]');
  await page.click('[data-testid=submit]');
  await page.waitForURL(/mlp_ae=1/);
  await page.waitForFunction(n => document.querySelectorAll('[data-testid=node-table] tr[data-node]').length === n, input.withAE.nodes.length);
  const rows = await compareTable(input.withAE);
  check(rows.some(r => r.name.startsWith('mlp_ae_L1_')), 'no autoencoder latent in the node table');
  check(!rows.some(r => r.name.startsWith('mlp_L1_')), 'layer 1 neurons still listed although its latents replace them');
  await lossIs(input.withAE.runs[0].loss);
});

await step('attention pattern of a head', async () => {
  const head = input.trace.split('@')[0] + '@' + input.trace.split('@')[1].split('>')[0];
  await page.goto(q({ ...question, attn: head }));
  await page.waitForSelector('[data-testid=attention-pattern] td[data-activation]');
  const rows = await page.$$eval('[data-testid=attention-pattern] td[data-activation]', tds => {
    const sums = {};
    for (const td of tds) sums[td.dataset.q] = (sums[td.dataset.q] || 0) + Number(td.dataset.activation);
    return Object.values(sums);
  });
  for (const s of rows) check(Math.abs(s - 1) < 1e-4, `an attention row sums to ${s}, not 1`);
});

const comp = input.component;
const compURL = (c) => `${base}/c/${c.dataset}/${c.location}/${c.layer}/${c.index}`;
await step('component page heatmaps equal the dataset (tdb top --json)', async () => {
  await page.goto(compURL(comp));
  await page.waitForSelector('[data-testid=top-records] [data-record]');
  const shown = await page.$$eval('[data-testid=top-records] [data-record]', r => r.length);
  check(shown === Math.min(6, comp.top.length), `${shown} top records shown, want ${Math.min(6, comp.top.length)}`);
  await page.click('[data-testid=top-records-show-all]');
  const recs = await page.$$eval('[data-testid=top-records] [data-record]', rs => rs.map(r => [...r.querySelectorAll('[data-token-index]')].map(s => [Number(s.dataset.tokenIndex), Number(s.dataset.activation)])));
  check(recs.length === comp.top.length, `${recs.length} records after show all, dataset has ${comp.top.length}`);
  recs.forEach((toks, i) => {
    const want = comp.top[i].activations;
    check(toks.length === want.length, `record ${i}: ${toks.length} tokens, dataset ${want.length}`);
    toks.forEach(([j, a]) => check(close(a, want[j]), `record ${i} token ${j}: page ${a}, dataset ${want[j]}`));
  });
  await page.click('[data-testid=top-records-show-all]');
  await page.waitForSelector('[data-testid=logit-lens] .t');
  await page.waitForSelector('[data-testid=explanations] .explanation');
  const text = await page.textContent('[data-testid=explanations] .explanation .text');
  check(text === comp.explanation, `explanation shown ${JSON.stringify(text)}, tdb explain show ${JSON.stringify(comp.explanation)}`);
  await shot('component');
});

await step('component keyboard navigation and history', async () => {
  await page.goto(compURL(comp));
  await page.waitForSelector('[data-testid=top-records] [data-record]');
  await page.keyboard.press('ArrowRight');
  await page.waitForURL(u => u.pathname === `/c/${comp.dataset}/${comp.location}/${comp.layer}/${comp.index + 1}`);
  await page.waitForFunction(t => document.querySelector('[data-testid=component-title]')?.textContent.includes(t), `${comp.layer}:${comp.index + 1}`);
  await page.keyboard.press('ArrowUp');
  await page.waitForURL(u => u.pathname === `/c/${comp.dataset}/${comp.location}/${comp.layer - 1}/${comp.index + 1}`);
  await page.waitForFunction(t => document.querySelector('[data-testid=component-title]')?.textContent.includes(t), `${comp.layer - 1}:${comp.index + 1}`);
  await page.keyboard.press('ArrowLeft');
  await page.waitForURL(u => u.pathname === `/c/${comp.dataset}/${comp.location}/${comp.layer - 1}/${comp.index}`);
  await page.goBack();
  await page.waitForURL(u => u.pathname.endsWith(`/${comp.layer - 1}/${comp.index + 1}`));
  await page.waitForSelector('[data-testid=top-records] [data-record]');
});

await step('activations for your prompt', async () => {
  await page.goto(compURL(comp));
  await page.fill('[data-testid=your-prompt]', 'When Mary and John went to the store');
  await page.click('text=Add prompt');
  await page.waitForURL(/prompt=/);
  await page.waitForSelector('[data-prompt-record] [data-token-index]');
  const n = await page.$$eval('[data-prompt-record] [data-token-index]', s => s.length);
  check(n === 8, `your prompt shows ${n} tokens, want 8`);
});

await step('head component page', async () => {
  await page.goto(`${base}/c/${comp.dataset}/attn.heads/1/2`);
  await page.waitForSelector('[data-testid=top-records] [data-record] [data-token-index]');
  // A head's token i shows the maximum of row i of the record's lower triangle.
  const recs = await page.$$eval('[data-testid=top-records] [data-record]', rs => rs.map(r => [...r.querySelectorAll('[data-token-index]')].map(s => Number(s.dataset.activation))));
  check(recs.length === Math.min(6, comp.headTop.length), `${recs.length} head records shown`);
  recs.forEach((vals, i) => {
    const tri = comp.headTop[i].activations;
    vals.forEach((v, q) => {
      const row = tri.slice(q * (q + 1) / 2, (q + 1) * (q + 2) / 2);
      check(close(v, Math.max(...row)), `head record ${i} token ${q}: page ${v}, dataset row max ${Math.max(...row)}`);
    });
  });
  await page.hover('[data-testid=top-records] [data-record] [data-token-index="3"]');
  await page.screenshot({ path: join(input.screenshots, 'component-head.png') });
});

await step('home page lists the dataset', async () => {
  await page.goto(base + '/');
  await page.waitForSelector(`[data-testid=datasets] tr[data-dataset="${comp.dataset}"]`);
  await page.waitForSelector('.stat');
  await shot('home');
  await page.fill('[data-testid=jump]', 'mlp_L1_7');
  await page.press('[data-testid=jump]', 'Enter');
  await page.waitForURL(u => u.pathname === `/c/${comp.dataset}/mlp.post_act/1/7`);
});

if (input.query) {
  await step('layer table sorted by max (query service)', async () => {
    await page.goto(`${base}/l/${comp.dataset}/${comp.location}/${comp.layer}?sort=max&order=desc`);
    await page.waitForSelector('[data-testid=layer-table] tr[data-component]');
    const maxes = await page.$$eval('[data-testid=layer-table] td[data-col=max]', tds => tds.map(td => Number(td.dataset.value)));
    check(maxes.length === Math.min(100, comp.components), `${maxes.length} rows`);
    for (let i = 1; i < maxes.length; i++) check(maxes[i - 1] >= maxes[i], `not sorted by max at row ${i}`);
    await shot('layer');
    await page.click('[data-testid=layer-table] tr[data-component] a');
    await page.waitForSelector('[data-testid=top-records] [data-record]');
    const top = await page.$eval('[data-testid=top-records] [data-record]', r => Number(r.dataset.max));
    check(close(top, maxes[0]), `the first component's top record ${top} is not the layer table's max ${maxes[0]}`);
  });
  await step('search by token (query service)', async () => {
    await page.goto(`${base}/search?dataset=${comp.dataset}&token=${encodeURIComponent(input.target)}`);
    await page.waitForSelector('[data-testid=search-results] [data-hit]');
    const peaks = await page.$$eval('[data-testid=search-results] [data-hit] .peak', s => s.map(x => x.textContent));
    check(peaks.length > 0 && peaks.every(p => p === input.target), `search evidence peaks on ${JSON.stringify(peaks)}, not ${JSON.stringify(input.target)}`);
    await shot('search');
  });
}

async function errorShows(url, re, name) {
  await page.goto(url);
  await page.waitForFunction(re => [...document.querySelectorAll('[data-testid=error]')].some(e => new RegExp(re).test(e.textContent)), re.source);
  if (name) await shot(name);
}
await step('bad input: multi-token target', () => errorShows(q({ ...question, target: ' Marybellezz' }), /not exactly one/, 'error-target'));
await step('bad input: over-long prompt', () => errorShows(q({ ...question, prompt: 'hello '.repeat(input.maxPromptTokens + 5) }), /too long/));
await step('bad input: unknown dataset', () => errorShows(`${base}/c/nope/mlp.post_act/0/0`, /nope/, 'error-dataset'));
await step('bad input: bad node in the URL', () => errorShows(q({ ...question, ablate: 'neuron42' }), /bad node/));
await step('bad input: component out of range', () => errorShows(`${compURL({ ...comp, index: 999999 })}`, /out of range/));
await step('bad input: unknown page', () => errorShows(`${base}/nowhere`, /./));

await step('no page errors', async () => { check(pageErrors.length === 0, 'page errors: ' + pageErrors.join(' | ')); });
await ctx.close();
console.log('RESULT ' + JSON.stringify(result));
process.exit(failed ? 1 : 0);
