/**
 * The playground page: plain HTML, a stylesheet and a small script (no framework, no build
 * step). The script writes text only through textContent, so nothing a request or a policy
 * holds can become markup.
 */

export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>stepup-pdp playground</title>
<link rel="stylesheet" href="/playground/style.css">
<script src="/playground/app.js" defer></script>
</head>
<body data-access="{{ACCESS}}">
<header>
  <h1>stepup-pdp playground</h1>
  <p>Edit a decision request, see the decision, what the user's client would receive, and why.
  Nothing here is recorded: these are dry runs that read the history but never teach it.
  <a href="/docs">API reference</a></p>
  <p id="key-row" hidden><label>Admin key <input id="key" type="password" autocomplete="off" size="40"></label>
  <button id="key-apply" type="button">Use key</button> <span class="hint">This playground needs a key from ADMIN_API_KEYS.</span></p>
  <p id="status" class="hint"></p>
</header>
<main>
  <section class="pane">
    <h2>1. The request, against the live policies</h2>
    <label>Example <select id="example"></select></label>
    <textarea id="request" spellcheck="false" rows="22" aria-label="decision request (JSON)"></textarea>
    <button id="decide" type="button">Decide</button>
    <div id="live-result" class="result" aria-live="polite"></div>
  </section>
  <section class="pane">
    <h2>2. The same request, with an edited policy file</h2>
    <p class="hint">The file replaces the live file of the same name (or is added to the folder) for this test only; the set that serves does not change.</p>
    <label>File <select id="file"></select> <input id="file-name" value="playground.yaml" size="28" aria-label="file name"></label>
    <textarea id="policy" spellcheck="false" rows="22" aria-label="policy file (YAML)"></textarea>
    <button id="try" type="button">Decide with this file</button>
    <div id="candidate-result" class="result" aria-live="polite"></div>
  </section>
</main>
</body>
</html>
`

export const PAGE_CSS = `
body { font: 15px/1.45 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f6f7f9; }
header { padding: 12px 24px; background: #fff; border-bottom: 1px solid #dde1e7; }
h1 { font-size: 20px; margin: 4px 0; } h2 { font-size: 16px; margin: 0 0 8px; } h3 { font-size: 14px; margin: 14px 0 4px; }
main { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; padding: 16px 24px; }
@media (max-width: 1000px) { main { grid-template-columns: 1fr; } }
.pane { background: #fff; border: 1px solid #dde1e7; border-radius: 6px; padding: 12px 16px; min-width: 0; }
textarea { width: 100%; box-sizing: border-box; font: 13px/1.4 ui-monospace, monospace; margin: 8px 0; }
select, input, button { font: inherit; }
button { background: #2456c9; color: #fff; border: 0; border-radius: 4px; padding: 6px 14px; cursor: pointer; }
.hint { color: #5b6472; font-size: 13px; }
.decision { display: inline-block; font-weight: 700; padding: 2px 10px; border-radius: 12px; color: #fff; }
.decision-allow { background: #1f8a4c; } .decision-step_up { background: #b86e00; } .decision-deny { background: #c0392b; }
pre { background: #f0f2f5; padding: 8px; overflow-x: auto; font-size: 12.5px; white-space: pre-wrap; word-break: break-word; }
.error { color: #a4281b; }
ul.tree, ul.tree ul { list-style: none; padding-left: 18px; margin: 2px 0; }
ul.tree { padding-left: 0; }
ul.tree li { margin: 2px 0; }
ul.tree li::before { content: "\\2022"; margin-right: 6px; color: #8a93a0; }
.node-fired::before, .node-step_up::before { color: #b86e00 !important; }
.node-deny::before, .node-error::before { color: #c0392b !important; }
.node-satisfied::before { color: #1f8a4c !important; }
.node-not_fired, .node-overridden { color: #7b8491; }
.node-figure { font: 12.5px ui-monospace, monospace; color: #39424e; }
.detail { color: #5b6472; margin-left: 6px; }
`

export const PAGE_SCRIPT = `'use strict'
const $ = (id) => document.getElementById(id)
let examples = []
let files = []

function el (tag, className, text) {
  const node = document.createElement(tag)
  if (className) node.className = className
  if (text !== undefined) node.textContent = text
  return node
}

async function api (path, body) {
  const headers = {}
  const key = $('key').value.trim()
  if (key) headers.authorization = 'Bearer ' + key
  const init = { headers }
  if (body !== undefined) { init.method = 'POST'; headers['content-type'] = 'application/json'; init.body = JSON.stringify(body) }
  const res = await fetch(path, init)
  let data = {}
  try { data = await res.json() } catch {}
  return { status: res.status, data }
}

function renderTree (nodes, nested) {
  const list = el('ul', nested ? 'subtree' : 'tree')
  for (const node of nodes) {
    const item = el('li', 'node-' + (node.status || 'note'))
    item.append(el('span', 'label', node.label))
    if (node.detail) item.append(el('span', 'detail', node.detail))
    if (node.children && node.children.length > 0) item.append(renderTree(node.children, true))
    list.append(item)
  }
  return list
}

function clientText (client) {
  const lines = ['HTTP ' + client.status]
  for (const [name, value] of Object.entries(client.headers)) lines.push(name + ': ' + value)
  if (client.body) lines.push('', JSON.stringify(client.body, null, 2))
  return lines.join('\\n')
}

function renderResult (target, status, data) {
  target.replaceChildren()
  if (status !== 200) {
    target.append(el('p', 'error', (data.error || 'HTTP ' + status) + ': ' + (data.message || 'the request failed')))
    return
  }
  if (data.candidate) {
    const c = data.candidate
    target.append(el('p', 'hint', (c.replaced ? 'Replaced ' : 'Added ') + c.file + ' (' + c.files + ' policy files in this test).'))
    if (c.errors.length > 0) {
      target.append(el('h3', '', 'The file does not validate'))
      const list = el('ul', 'problems error')
      for (const p of c.errors) list.append(el('li', '', p))
      target.append(list)
    }
    if (c.warnings.length > 0) {
      const list = el('ul', 'problems hint')
      for (const p of c.warnings) list.append(el('li', '', 'warning: ' + p))
      target.append(list)
    }
  }
  if (!data.decision) return
  const d = data.decision
  const head = el('p')
  head.append(el('span', 'decision decision-' + d.decision, d.decision))
  if (d.message) head.append(' ', el('span', 'message', d.message))
  target.append(head)
  target.append(el('h3', '', 'What the client receives'), el('pre', 'client', clientText(data.client)), el('p', 'hint', data.client.meaning))
  target.append(el('h3', '', data.traced ? 'Why: the engine trace' : 'Why: the reasons (fired triggers)'))
  target.append(renderTree(data.tree))
  const raw = el('details')
  raw.append(el('summary', '', 'The full answer of POST /decide'), el('pre', 'raw', JSON.stringify(d, null, 2)))
  target.append(raw)
}

function readRequest (target) {
  try {
    return JSON.parse($('request').value)
  } catch (err) {
    target.replaceChildren(el('p', 'error', 'request: not valid JSON (' + err.message + ')'))
    return undefined
  }
}

async function decideLive () {
  const target = $('live-result')
  const request = readRequest(target)
  if (request === undefined) return
  const { status, data } = await api('/playground/api/decide', { request })
  renderResult(target, status, data)
}

async function decideCandidate () {
  const target = $('candidate-result')
  const request = readRequest(target)
  if (request === undefined) return
  const { status, data } = await api('/playground/api/decide', { request, policy: { file: $('file-name').value.trim(), text: $('policy').value } })
  renderResult(target, status, data)
}

function option (value, text) { const o = el('option', '', text); o.value = value; return o }

async function load () {
  const { status, data } = await api('/playground/api/examples')
  if (status === 401) {
    $('key-row').hidden = false
    $('status').textContent = 'Enter an admin key to use the playground.'
    return
  }
  if (status !== 200) { $('status').textContent = 'The playground API answered ' + status + '.'; return }
  examples = data.examples
  files = data.files
  $('status').textContent = 'Live policy set ' + data.live.hash + ': ' + data.live.policies + ' policies.'
  $('example').replaceChildren(...examples.map((e, i) => option(String(i), e.summary)))
  if (examples.length > 0) $('request').value = JSON.stringify(examples[0].request, null, 2)
  $('file').replaceChildren(option('', '(new file)'), ...files.map((f, i) => option(String(i), f.file)))
  if (files.length > 0) { $('file').value = '0'; pickFile() } else $('policy').value = TEMPLATE
}

function pickFile () {
  const f = files[Number($('file').value)]
  if ($('file').value === '' || !f) { $('file-name').value = 'playground.yaml'; $('policy').value = TEMPLATE; return }
  $('file-name').value = f.file
  $('policy').value = f.text
}

const TEMPLATE = [
  'policies:',
  '  - id: try-me',
  '    actions: ["payments.**"]',
  '    when:',
  '      - condition: has(context.amount) && context.amount > 100',
  '    require: { aal: 2, maxAge: 10m }',
  '    message: Confirm it is you.',
  ''
].join('\\n')

document.addEventListener('DOMContentLoaded', () => {
  $('example').addEventListener('change', () => { $('request').value = JSON.stringify(examples[Number($('example').value)].request, null, 2) })
  $('file').addEventListener('change', pickFile)
  $('decide').addEventListener('click', () => { void decideLive() })
  $('try').addEventListener('click', () => { void decideCandidate() })
  $('key-apply').addEventListener('click', () => { $('key-row').hidden = true; void load() })
  void load()
})
`
