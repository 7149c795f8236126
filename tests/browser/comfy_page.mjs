// Shared by check_workflows.mjs and export_ui.mjs: drive Debian's Chromium (never a downloaded browser)
// against a running ComfyUI server, and compare API-format prompts.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '..', '..');

// Flags checked on this project's machines (shared/reference/environment.md). Playwright gives every
// launch() a fresh temporary --user-data-dir of its own.
const CHROMIUM_FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** playwright-core from NODE_PATH (ESM imports ignore it, require() honours it), else .likeness/node. */
function loadPlaywright() {
  const candidates = [import.meta.url, path.join(REPO, '.likeness', 'node', 'node_modules', 'x.js')];
  for (const from of candidates) {
    try {
      return createRequire(from)('playwright-core');
    } catch (e) {
      if (e.code !== 'MODULE_NOT_FOUND') throw e;
    }
  }
  throw new Error('playwright-core not found: run scripts/setup.sh --browser, or set NODE_PATH to a node_modules holding it');
}

export async function launchBrowser() {
  process.env.PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD = '1';
  const { chromium } = loadPlaywright();
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_FLAGS,
  });
}

/** Open the ComfyUI page and wait until the app, its node definitions and the graph canvas are there. */
export async function openComfy(browser, url, { timeoutMs = 120000 } = {}) {
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(url, { waitUntil: 'domcontentloaded', timeout: timeoutMs });
  try {
    await page.waitForFunction(() => window.app?.graph && window.app.canvas && window.LiteGraph
      && document.querySelector('canvas#graph-canvas')
      && Object.keys(window.LiteGraph.registered_node_types).length > 0, null, { timeout: timeoutMs });
  } catch (e) {
    throw new Error(`ComfyUI page at ${url} did not become ready: ${e.message}\npage errors: ${pageErrors.join('\n')}`);
  }
  // Record the missing-nodes dialog however the frontend decides to show it.
  await page.evaluate(() => {
    window.__likenessMissing = [];
    const original = window.app.showMissingNodesError.bind(window.app);
    window.app.showMissingNodesError = (types, ...rest) => {
      window.__likenessMissing.push(...types.map((t) => (typeof t === 'string' ? t : t.type)));
      return original(types, ...rest);
    };
  });
  return { page, pageErrors };
}

/** Texts of the dialogs now open (missing nodes, errors, prompts), closed afterwards so the next step sees the canvas. */
export async function takeDialogs(page) {
  const texts = await page.evaluate(() => [...document.querySelectorAll('.p-dialog')]
    .filter((d) => d.offsetParent !== null || d.getClientRects().length)
    .map((d) => d.innerText.trim().replace(/\s+/g, ' ').slice(0, 500)));
  for (let i = 0; i < texts.length; i += 1) await page.keyboard.press('Escape');
  return texts;
}

export async function fitView(page) {
  await page.evaluate(() => {
    const nodes = window.app.graph.nodes;
    if (!nodes.length) return;
    let [x0, y0, x1, y1] = [Infinity, Infinity, -Infinity, -Infinity];
    for (const n of nodes) {
      const [x, y, w, h] = n.boundingRect;
      x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x + w); y1 = Math.max(y1, y + h);
    }
    window.app.canvas.ds.fitToBounds([x0, y0, x1 - x0, y1 - y0], { zoom: 0.9 });
    window.app.canvas.setDirty(true, true);
  });
}

function sameValue(a, b) {
  if (typeof a === 'number' && typeof b === 'number') return a === b || Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => sameValue(v, b[i]));
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].every((k) => sameValue(a[k], b[k]));
  }
  return a === b;
}

function isLink(v) {
  return Array.isArray(v) && v.length === 2 && (typeof v[0] === 'string' || typeof v[0] === 'number') && Number.isInteger(v[1]);
}

function normalise(v) {
  return isLink(v) ? [String(v[0]), v[1]] : v;
}

/** Differences between two API-format prompts (node ids, class_type, inputs; links as [id, slot]; _meta ignored). */
export function diffPrompts(actual, expected, actualName = 'ui', expectedName = 'api') {
  const diff = [];
  const ids = [...new Set([...Object.keys(expected), ...Object.keys(actual)])]
    .sort((a, b) => (Number(a) - Number(b)) || a.localeCompare(b));
  for (const id of ids) {
    const a = actual[id];
    const e = expected[id];
    if (!a) { diff.push(`node ${id} (${e.class_type}) only in ${expectedName}`); continue; }
    if (!e) { diff.push(`node ${id} (${a.class_type}) only in ${actualName}`); continue; }
    if (a.class_type !== e.class_type) diff.push(`node ${id}: class_type ${actualName}=${a.class_type} ${expectedName}=${e.class_type}`);
    const ai = a.inputs ?? {};
    const ei = e.inputs ?? {};
    for (const name of [...new Set([...Object.keys(ei), ...Object.keys(ai)])].sort()) {
      const label = `node ${id} (${e.class_type}) input '${name}'`;
      if (!(name in ai)) diff.push(`${label}: only in ${expectedName} = ${JSON.stringify(ei[name])}`);
      else if (!(name in ei)) diff.push(`${label}: only in ${actualName} = ${JSON.stringify(ai[name])}`);
      else if (!sameValue(normalise(ai[name]), normalise(ei[name]))) {
        diff.push(`${label}: ${actualName}=${JSON.stringify(ai[name])} ${expectedName}=${JSON.stringify(ei[name])}`);
      }
    }
  }
  return diff;
}
