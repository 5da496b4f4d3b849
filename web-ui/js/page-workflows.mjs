// Workflows: the list (latest version of each), and one definition with its versions, diagram,
// JSON and recent executions.
import {ApiError, Keel, isAbort} from './api.mjs';
import {openDialog, problemView} from './dialogs.mjs';
import {copyButton, h, icon, paths, preserveFocus, spinner} from './dom.mjs';
import {fmtAbs, timeCell, timeFact} from './format.mjs';
import {jsonPanel} from './json-view.mjs';
import {renderDiagram} from './diagram.mjs';
import {executionsTable} from './page-executions.mjs';
import {durationText, indexDefinition, retrySummary, stepKind} from './model.mjs';

function stepChain(steps) {
  const list = steps || [];
  const shown = list.slice(0, 8);
  return h('span', {class: 'chain'},
    shown.map((d, i) => [
      i ? h('span', {class: 'chain-arrow', 'aria-hidden': 'true'}, '→') : null,
      h('span', {class: ['chain-step', `kind-${stepKind(d)}`], title: `${d.id} (${stepKind(d)})${d.compensate ? ', compensated' : ''}`},
        icon(stepKind(d)), h('span', {class: 'mono'}, d.id), d.compensate ? h('span', {class: 'chain-comp', title: 'has a compensation'}, '↺') : null),
    ]),
    list.length > shown.length ? h('span', {class: 'muted'}, ` +${list.length - shown.length} more`) : null);
}

export async function renderWorkflows(ctx) {
  ctx.title('Workflows');
  const filter = h('input', {type: 'search', class: 'input', id: 'workflow-filter', placeholder: 'Filter by name', 'aria-label': 'Filter workflows by name', autocomplete: 'off'});
  const body = h('div', {'aria-live': 'polite'}, spinner());
  ctx.root.append(
    h('div', {class: 'page-head'},
      h('div', null, h('h1', null, 'Workflows'), h('p', {class: 'subtitle'}, 'The latest version of each definition. Definitions are immutable: a change is a new version.')),
      h('div', {class: 'head-actions'}, filter)),
    body);
  let wfs;
  try {
    wfs = await Keel.allWorkflows(ctx.signal);
  } catch (err) {
    if (isAbort(err) || !ctx.alive) return;
    body.replaceChildren(problemView(err));
    return;
  }
  if (!ctx.alive) return;
  if (!wfs.length) {
    body.replaceChildren(h('div', {class: 'empty-state card'}, h('h2', null, 'No workflows yet'),
      h('p', null, 'Register one with ', h('code', null, 'curl -X POST $KEEL/v1/workflows -H "Content-Type: application/json" -d @workflow.json'), '.')));
    return;
  }
  const rows = wfs.map((w) => {
    const def = w.definition || {};
    return h('tr', {'data-name': w.name},
      h('td', {'data-label': 'Name'}, h('a', {href: paths.workflow(w.name), class: 'strong-link'}, w.name),
        def.description ? h('div', {class: 'muted small'}, def.description) : null),
      h('td', {'data-label': 'Version'}, h('a', {href: paths.version(w.name, w.version), class: 'ver'}, `v${w.version}`)),
      h('td', {'data-label': 'Steps', class: 'c-chain'}, stepChain(def.steps)),
      h('td', {'data-label': 'Registered', class: 'c-time'}, timeCell(w.created_at)),
      h('td', {'data-label': 'Executions'}, h('a', {href: paths.executions({workflow: w.name})}, 'Executions →')));
  });
  const tbody = h('tbody', null, rows);
  body.replaceChildren(h('div', {class: 'table-wrap card-flush'},
    h('table', {class: 'table wf-table'},
      h('thead', null, h('tr', null, h('th', null, 'Name'), h('th', null, 'Latest'), h('th', null, 'Steps'), h('th', null, 'Registered'), h('th', null, h('span', {class: 'sr-only'}, 'Links')))),
      tbody)));
  filter.addEventListener('input', () => {
    const q = filter.value.trim().toLowerCase();
    for (const tr of tbody.rows) tr.hidden = !!q && !tr.dataset.name.toLowerCase().includes(q);
  });
}

export async function renderWorkflow(ctx, name, version) {
  ctx.title(version ? `${name} v${version}` : name);
  const crumbs = h('nav', {class: 'crumbs', 'aria-label': 'Breadcrumb'}, h('a', {href: '/ui/workflows'}, 'Workflows'), h('span', {'aria-hidden': 'true'}, '/'),
    version ? h('a', {href: paths.workflow(name)}, name) : h('span', {'aria-current': 'page'}, name),
    version ? [h('span', {'aria-hidden': 'true'}, '/'), h('span', {'aria-current': 'page'}, `v${version}`)] : null);
  ctx.root.append(crumbs, spinner());

  let latest;
  let wf;
  try {
    latest = await Keel.workflow(name, ctx.signal);
    wf = version && version !== latest.version ? await Keel.version(name, version, ctx.signal) : latest;
  } catch (err) {
    if (isAbort(err) || !ctx.alive) return;
    ctx.root.replaceChildren(crumbs, h('div', {class: 'empty-state card'},
      h('h1', null, err instanceof ApiError && err.status === 404 ? (version ? 'Version not found' : 'Workflow not found') : 'Could not load the workflow'),
      problemView(err), h('p', null, h('a', {href: '/ui/workflows'}, '← All workflows'))));
    return;
  }
  if (!ctx.alive) return;
  const def = wf.definition || {};
  const isLatest = wf.version === latest.version;

  // ---- header
  const startBtn = h('button', {type: 'button', class: 'btn btn-primary', id: 'start-execution'}, icon('play'), h('span', null, 'Start execution'));
  startBtn.addEventListener('click', () => startDialog(ctx, wf));
  const head = h('div', {class: 'page-head'},
    h('div', {class: 'head-main'},
      h('div', {class: 'title-row'}, h('h1', null, wf.name), h('span', {class: 'ver ver-lg'}, `v${wf.version}`),
        isLatest ? h('span', {class: 'tag tag-latest'}, 'latest') : h('a', {class: 'tag', href: paths.workflow(name)}, `latest is v${latest.version}`)),
      def.description ? h('p', {class: 'subtitle'}, def.description) : null),
    h('div', {class: 'head-actions'}, startBtn));

  // ---- versions (1..latest, newest first)
  const versionsNav = h('nav', {class: 'versions', 'aria-label': 'Versions'}, h('span', {class: 'muted small'}, 'Versions'));
  const vlist = [];
  for (let v = latest.version; v >= 1 && vlist.length < 30; v--) vlist.push(v);
  const versionLinks = new Map();
  for (const v of vlist) {
    const a = h('a', {href: paths.version(name, v), class: ['ver-pill', v === wf.version && 'current'], 'aria-current': v === wf.version ? 'page' : null, 'data-version': v},
      h('span', null, `v${v}`), h('span', {class: 'ver-date'}, ''));
    versionLinks.set(v, a);
    versionsNav.append(a);
  }
  if (latest.version > vlist.length) versionsNav.append(h('span', {class: 'muted small'}, `… ${latest.version - vlist.length} older`));
  Promise.all(vlist.map((v) => (v === wf.version ? Promise.resolve(wf) : v === latest.version ? Promise.resolve(latest) : Keel.version(name, v, ctx.signal).catch(() => null))))
    .then((vs) => {
      for (const x of vs) {
        if (!x) continue;
        const a = versionLinks.get(x.version);
        a.title = `registered ${fmtAbs(Date.parse(x.created_at))}\ndigest ${x.digest}`;
        a.querySelector('.ver-date').textContent = fmtAbs(Date.parse(x.created_at), {millis: false}).slice(0, 16);
      }
    })
    .catch(() => {});

  // ---- facts
  const defaults = def.defaults || {};
  const allSteps = indexDefinition(def.steps); // nested steps (parallel branches, for_each bodies, if branches) too
  const kinds = new Set([...allSteps.values()].map((x) => x.kind));
  const facts = h('section', {class: 'card summary'}, h('dl', {class: 'facts'},
    h('div', null, h('dt', null, 'Registered'), h('dd', null, timeFact(wf.created_at))),
    h('div', null, h('dt', null, 'Steps'), h('dd', null, String((def.steps || []).length),
      allSteps.size > (def.steps || []).length ? h('span', {class: 'muted small'}, ` · ${allSteps.size} with nested`) : null)),
    h('div', null, h('dt', null, 'Default timeout'), h('dd', null, defaults.timeout != null ? durationText(defaults.timeout) : '30s (built-in)')),
    h('div', {class: 'wide'}, h('dt', null, 'Default retry'), h('dd', null, retrySummary(defaults.retry))),
    h('div', {class: 'wide'}, h('dt', null, 'Digest'), h('dd', {class: 'digest'}, h('code', {title: wf.digest}, wf.digest.slice(0, 16) + '…'), copyButton(() => wf.digest, 'Copy digest')))));

  // ---- diagram and JSON
  const diagramHost = h('div', {class: 'diagram-host'});
  const diagramCard = h('section', {class: 'card', 'aria-labelledby': 'diagram-h'}, h('div', {class: 'card-head'}, h('h2', {id: 'diagram-h'}, 'Steps'),
    h('span', {class: 'legend'},
      h('span', {class: 'legend-item'}, h('span', {class: 'legend-swatch kind-activity'}), 'activity'),
      h('span', {class: 'legend-item'}, h('span', {class: 'legend-swatch kind-sleep'}), 'sleep'),
      h('span', {class: 'legend-item'}, h('span', {class: 'legend-swatch kind-wait'}), 'wait'),
      kinds.has('parallel') ? h('span', {class: 'legend-item'}, h('span', {class: 'legend-swatch kind-parallel'}), 'parallel') : null,
      kinds.has('for_each') ? h('span', {class: 'legend-item'}, h('span', {class: 'legend-swatch kind-for_each'}), 'for each') : null,
      kinds.has('set') ? h('span', {class: 'legend-item'}, h('span', {class: 'legend-swatch kind-set'}), 'set') : null,
      kinds.has('fail') ? h('span', {class: 'legend-item'}, h('span', {class: 'legend-swatch kind-fail'}), 'fail') : null,
      kinds.has('if') ? h('span', {class: 'legend-item', 'data-kind': 'if'}, h('span', {class: 'legend-swatch kind-if'}), 'if') : null,
      kinds.has('workflow') ? h('span', {class: 'legend-item', 'data-kind': 'workflow'}, h('span', {class: 'legend-swatch kind-workflow'}), 'child workflow') : null,
      h('span', {class: 'legend-item'}, h('span', {class: 'legend-swatch comp'}), 'compensation'))), diagramHost);
  const jsonCard = jsonPanel('Definition', def, {id: 'panel-definition', depth: 4});
  const recent = h('section', {class: 'card', 'aria-labelledby': 'recent-h'});

  ctx.root.replaceChildren(crumbs, head, versionsNav, facts, h('div', {class: 'wf-grid'}, diagramCard, jsonCard), recent);

  let lastWidth = 0;
  const drawDiagram = () => {
    const w = Math.round(diagramHost.clientWidth || 720);
    if (Math.abs(w - lastWidth) < 8) return;
    lastWidth = w;
    diagramHost.replaceChildren(renderDiagram(def, {width: w}));
  };
  drawDiagram();
  const ro = new ResizeObserver(() => drawDiagram());
  ro.observe(diagramHost);
  ctx.onDispose(() => ro.disconnect());

  // ---- recent executions (live while one of them runs)
  const recentBody = h('div', null, spinner());
  recent.append(h('div', {class: 'card-head'}, h('h2', {id: 'recent-h'}, 'Recent executions'), h('span', {class: 'grow'}),
    h('a', {href: paths.executions({workflow: name}), class: 'btn btn-ghost btn-sm'}, 'All executions of this workflow →')), recentBody);
  async function loadRecent() {
    let page;
    try {
      page = await Keel.listExecutions({workflow: name, limit: 10}, ctx.signal);
    } catch (err) {
      if (isAbort(err) || !ctx.alive) return;
      recentBody.replaceChildren(problemView(err));
      return;
    }
    if (!ctx.alive) return;
    preserveFocus(recentBody, () => recentBody.replaceChildren(page.executions.length
      ? executionsTable(page.executions, {showWorkflow: false, caption: `Recent executions of ${name}`,
        stepsOf: (x) => (x.version === wf.version ? def.steps : x.version === latest.version ? (latest.definition || {}).steps : null)})
      : h('p', {class: 'muted pad'}, 'No executions yet. ', h('button', {type: 'button', class: 'link-btn', onclick: () => startBtn.click()}, 'Start one'), '.')));
    if (page.executions.some((x) => x.status === 'running')) ctx.later(() => loadRecent(), 3000);
  }
  await loadRecent();
}

function startDialog(ctx, wf) {
  const idInput = h('input', {type: 'text', class: 'input mono', id: 'start-id', autocomplete: 'off', spellcheck: 'false', placeholder: 'optional: the server makes a UUIDv7'});
  const input = h('textarea', {class: 'input mono', id: 'start-input', rows: '8', spellcheck: 'false'});
  input.value = '{\n  \n}';
  const hint = h('p', {class: 'hint', id: 'start-input-hint'}, 'Any JSON value; empty for null.');
  input.setAttribute('aria-describedby', 'start-input-hint');
  const parse = () => {
    const t = input.value.trim();
    if (!t) return {ok: true, value: null};
    try {
      const value = JSON.parse(t);
      input.classList.remove('invalid');
      hint.classList.remove('bad');
      hint.textContent = 'Valid JSON.';
      return {ok: true, value};
    } catch (e) {
      input.classList.add('invalid');
      hint.classList.add('bad');
      hint.textContent = `Not valid JSON: ${e.message}`;
      return {ok: false};
    }
  };
  input.addEventListener('input', parse);
  openDialog({
    title: `Start ${wf.name} v${wf.version}`,
    description: 'Starting is idempotent: the same id with the same input returns the existing execution.',
    className: 'dialog-start',
    body: h('div', {class: 'stack'},
      h('div', {class: 'field'}, h('label', {for: 'start-id'}, 'Execution id'), idInput),
      h('div', {class: 'field'}, h('label', {for: 'start-input'}, 'Input (JSON)'), input, hint)),
    actions: [
      {label: 'Close', kind: 'secondary', id: 'dismiss'},
      {
        label: 'Start',
        kind: 'primary',
        icon: 'play',
        id: 'start',
        submit: true,
        onClick: async () => {
          const p = parse();
          if (!p.ok) throw {problem: {title: 'The input is not valid JSON', detail: hint.textContent}};
          const body = {input: p.value, version: wf.version};
          if (idInput.value.trim()) body.id = idInput.value.trim();
          const x = await Keel.startExecution(wf.name, body);
          ctx.navigate(paths.execution(x.id));
        },
      },
    ],
  });
  input.focus();
}
