// Load each shipped UI-format workflow in the real ComfyUI frontend, the way a user does, and check that
// every node type is known, that the frontend converts it to exactly its API twin
// (workflows/api/<name>.json), and that queueing it from the page runs to success. One browser for all.
//
//   node tests/browser/check_workflows.mjs SERVER_URL SCREENSHOT_DIR RESULTS_JSON WORKFLOW.json...
// Writes RESULTS_JSON: {"<name>": {missing, load_dialogs, run_dialogs, diff, prompt_id, status, error, screenshot, page_errors}}.
// Exit code 0 when the script itself ran; the verdict on each workflow is pytest's (tests/browser/test_frontend.py).
import fs from 'node:fs';
import path from 'node:path';
import { launchBrowser, openComfy, takeDialogs, fitView, diffPrompts } from './comfy_page.mjs';

const [url, shotDir, resultsPath, ...workflows] = process.argv.slice(2);
if (!url || !shotDir || !resultsPath || !workflows.length) {
  console.error('usage: node check_workflows.mjs SERVER_URL SCREENSHOT_DIR RESULTS_JSON WORKFLOW.json...');
  process.exit(2);
}
const RUN_TIMEOUT_MS = 1000 * Number(process.env.LIKENESS_WORKFLOW_TIMEOUT || 600);
fs.mkdirSync(shotDir, { recursive: true });

async function waitForHistory(promptId) {
  const deadline = Date.now() + RUN_TIMEOUT_MS;
  for (;;) {
    const entry = (await (await fetch(`${url}/api/history/${promptId}`)).json())[promptId];
    if (entry?.status?.completed !== undefined) return entry;
    if (Date.now() > deadline) throw new Error(`not finished after ${RUN_TIMEOUT_MS / 1000} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function executionError(status) {
  for (const [event, data] of status.messages ?? []) {
    if (event === 'execution_error') {
      return `node ${data.node_id} (${data.node_type}): ${data.exception_type}: ${data.exception_message}`;
    }
  }
  return JSON.stringify(status);
}

/** Wait (bounded, not fatal) until every image node that has outputs shows them, so the screenshot does. */
async function waitForPreviews(page, entry) {
  const ids = Object.entries(entry.outputs ?? {}).filter(([, ui]) => ui.images?.length).map(([id]) => id);
  await page.waitForFunction((nodeIds) => nodeIds.every((id) => {
    const node = window.app.graph.getNodeById(Number(id));
    return !node || (node.imgs?.length && node.imgs.every((img) => img.complete));
  }), ids, { timeout: 15000 }).catch(() => {});
}

async function checkOne(page, file) {
  const name = path.basename(file, '.json');
  const result = { file, missing: [], load_dialogs: [], run_dialogs: [], diff: [], prompt_id: null, status: null, error: null, screenshot: null };
  const ui = JSON.parse(fs.readFileSync(file, 'utf8'));
  const twinPath = path.join(path.dirname(file), 'api', `${name}.json`);
  const twin = fs.existsSync(twinPath) ? JSON.parse(fs.readFileSync(twinPath, 'utf8')) : null;

  const loaded = await page.evaluate(async ({ ui, name }) => {
    window.__likenessMissing = [];
    const types = [...new Set((ui.nodes ?? []).map((n) => n.type))];
    const unregistered = types.filter((t) => !(t in window.LiteGraph.registered_node_types));
    await window.app.loadGraphData(ui, true, true, name);
    const { output } = await window.app.graphToPrompt();
    return { unregistered, reported: window.__likenessMissing, output };
  }, { ui, name });
  result.missing = [...new Set([...loaded.unregistered, ...loaded.reported])];
  result.load_dialogs = await takeDialogs(page);
  result.diff = twin ? diffPrompts(loaded.output, twin, 'ui', 'api twin') : [`no API twin at ${twinPath}`];

  if (!result.missing.length) {
    const posted = page.waitForResponse((r) => r.request().method() === 'POST' && /\/prompt$/.test(new URL(r.url()).pathname),
      { timeout: 60000 });
    await page.evaluate(() => window.app.queuePrompt(0, 1));
    const response = await posted;
    const reply = await response.json().catch(() => ({}));
    if (!response.ok() || !reply.prompt_id) {
      result.error = `/prompt refused the queued workflow (HTTP ${response.status()}): ${JSON.stringify(reply)}`;
    } else {
      result.prompt_id = reply.prompt_id;
      const entry = await waitForHistory(reply.prompt_id);
      result.status = entry.status.status_str;
      if (result.status !== 'success') result.error = executionError(entry.status);
      await waitForPreviews(page, entry);
    }
    result.run_dialogs = await takeDialogs(page);
  }
  await fitView(page);
  result.screenshot = path.resolve(shotDir, `${name}.png`);
  await page.screenshot({ path: result.screenshot, fullPage: true });
  return result;
}

const results = {};
const browser = await launchBrowser();
try {
  const { page, pageErrors } = await openComfy(browser, url);
  await takeDialogs(page);
  for (const file of workflows) {
    const name = path.basename(file, '.json');
    const started = Date.now();
    const errorsBefore = pageErrors.length;
    try {
      results[name] = await checkOne(page, file);
    } catch (e) {
      results[name] = { file, error: `check_workflows.mjs: ${e.stack || e}` };
    }
    results[name].page_errors = pageErrors.slice(errorsBefore);
    results[name].seconds = (Date.now() - started) / 1000;
    const r = results[name];
    console.error(`[check_workflows] ${name}: ${r.missing?.length ?? '?'} missing node types, ${r.diff?.length ?? '?'} `
      + `differences from the API twin, run ${r.status ?? 'not queued'}${r.error ? ` (${r.error.split('\n')[0]})` : ''}, `
      + `${r.seconds} s${r.screenshot ? `, screenshot ${r.screenshot}` : ''}`);
  }
} finally {
  await browser.close();
  fs.writeFileSync(resultsPath, `${JSON.stringify(results, null, 2)}\n`);
}
