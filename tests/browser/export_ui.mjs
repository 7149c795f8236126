// Authoring tool: turn an API-format workflow into the UI-format file users drag into ComfyUI, using the
// real frontend's own importer (app.loadApiJson), layout (graph.arrange) and serialiser (graph.serialize).
// The export is refused unless the frontend converts it back to the same prompt (app.graphToPrompt).
//
//   node tests/browser/export_ui.mjs SERVER_URL API_JSON UI_JSON
// (or: python scripts/comfy_runner.py export-ui API_JSON UI_JSON, which starts the server)
import fs from 'node:fs';
import path from 'node:path';
import { launchBrowser, openComfy, takeDialogs, diffPrompts } from './comfy_page.mjs';

const [url, apiPath, uiPath] = process.argv.slice(2);
if (!url || !apiPath || !uiPath) {
  console.error('usage: node export_ui.mjs SERVER_URL API_JSON UI_JSON');
  process.exit(2);
}
const api = JSON.parse(fs.readFileSync(apiPath, 'utf8'));
const browser = await launchBrowser();
let failed = '';
try {
  const { page, pageErrors } = await openComfy(browser, url);
  await takeDialogs(page);
  const result = await page.evaluate(async ({ api, name }) => {
    const missing = [...new Set(Object.values(api).map((n) => n.class_type))]
      .filter((t) => !(t in window.LiteGraph.registered_node_types));
    if (missing.length) return { missing };
    await window.app.loadApiJson(api, name);
    if (typeof window.app.graph.arrange === 'function') window.app.graph.arrange();
    const { output } = await window.app.graphToPrompt();
    const ui = window.app.graph.serialize();
    if (/^0{8}-/.test(ui.id ?? '0')) ui.id = crypto.randomUUID(); // shared workflows need a real id
    return { missing, output, ui };
  }, { api, name: path.basename(uiPath) });
  const dialogs = await takeDialogs(page);
  if (result.missing.length) {
    failed = `node types not registered in the frontend: ${result.missing.join(', ')}`;
  } else {
    const diff = diffPrompts(result.output, api, 'exported', 'api');
    if (diff.length) failed = `the exported graph converts back to a different prompt:\n  ${diff.join('\n  ')}`;
  }
  if (failed && dialogs.length) failed += `\ndialogs: ${dialogs.join('\n')}`;
  if (failed && pageErrors.length) failed += `\npage errors: ${pageErrors.join('\n')}`;
  if (!failed) {
    fs.mkdirSync(path.dirname(path.resolve(uiPath)), { recursive: true });
    fs.writeFileSync(uiPath, `${JSON.stringify(result.ui, null, 2)}\n`);
    console.log(uiPath);
  }
} finally {
  await browser.close();
}
if (failed) {
  console.error(`export_ui: ${apiPath}: ${failed}`);
  process.exit(1);
}
