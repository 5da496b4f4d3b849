// One execution: header and actions, what it waits for, the diagram of its definition with its
// state, the waterfall, input/output/error, and the event history (its newest 500 events that
// match the filter drawn, earlier ones on demand). Polls while it runs. A
// child execution links to its parent, and an execution with workflow steps to its children
// (each with its status in the timeline, and from the diagram's box). A code execution has no
// definition: its keys in first-call order take the place of the diagram and the timeline, with
// how long its program has been idle and its handler (code-view.mjs).
import {ApiError, Keel, isAbort} from './api.mjs';
import {confirmAction, openDialog, problemView} from './dialogs.mjs';
import {badge, copyButton, h, icon, paths, preserveFocus, spinner, toast} from './dom.mjs';
import {fmtAbs, fmtClock, fmtDuration, fmtRelative, ms, timeFact} from './format.mjs';
import {jsonPanel, jsonView} from './json-view.mjs';
import {renderDiagram} from './diagram.mjs';
import {KEY_PAGE, handlerCard, keysCard, renderIdleLine} from './code-view.mjs';
import {buildStepTree, countsText, deriveTimeline, diagramOverlay, eventSummary, eventTone, historyWindow, eventMatches, indexStepCalls, isCodeExecution, isFinal, parentOf, pendingWork, pollInterval, retryable, signalOffer, startsChildren, stepCounts} from './model.mjs';
import {tagList} from './tags-view.mjs';
import {renderTimeline} from './timeline-view.mjs';

const POLL_MS = 1000;
const PENDING_MAX = 10; // pending work items listed; the others are counted
// Of a long history the newest events are drawn (those matching the filter), and "Show earlier
// events" adds more: a code execution with 10,000 keys has 20,000 events and more.
const HISTORY_SHOWN = 500;
const HISTORY_STEP = 1000;

/** [{status, n}] for countsText: "12 waiting for a signal · 3 attempts in flight". */
const KIND_WORDS = {attempt: 'attempts in flight', retry: 'retries due', timer: 'sleeping', wait: 'waiting for a signal', child: 'waiting for a child execution', compensation: 'compensations in flight', scheduled: 'scheduled', buffered: 'signals kept'};
const CHILDREN_MAX = 500; // child executions whose status the timeline shows (one request)
function kindCounts(items) {
  const m = new Map();
  for (const p of items) m.set(KIND_WORDS[p.kind] || p.kind, (m.get(KIND_WORDS[p.kind] || p.kind) || 0) + 1);
  return [...m].map(([status, n]) => ({status, n}));
}
const SIGNAL_NAME = /^[A-Za-z0-9_.:-]{1,128}$/;
// Whether the diagram card is open, kept for the next execution page (as the token is kept).
const DIAGRAM_OPEN_KEY = 'keel.executionDiagram';
// A diagram wider than its card is shown at no less than this scale, and scrolls inside the
// card instead (at phone width), so that its text stays readable.
const DIAGRAM_MIN_SCALE = 0.8;

function diagramOpenPref() {
  try {
    return localStorage.getItem(DIAGRAM_OPEN_KEY) !== 'closed';
  } catch {
    return true;
  }
}

export async function renderExecution(ctx, id) {
  ctx.title(id);
  const root = ctx.root;
  const crumbs = h('nav', {class: 'crumbs', 'aria-label': 'Breadcrumb'}, h('a', {href: '/ui/executions'}, 'Executions'), h('span', {'aria-hidden': 'true'}, '/'), h('span', {class: 'mono', 'aria-current': 'page'}, id));
  root.append(crumbs, spinner('Loading the execution…'));

  let exec;
  let events;
  try {
    exec = await Keel.execution(id, ctx.signal);
    events = await Keel.historyAll(id, 0, ctx.signal);
  } catch (err) {
    if (isAbort(err) || !ctx.alive) return;
    root.replaceChildren(crumbs,
      h('div', {class: 'empty-state card'},
        h('h1', null, err instanceof ApiError && err.status === 404 ? 'Execution not found' : 'Could not load the execution'),
        problemView(err),
        h('p', null, h('a', {href: '/ui/executions'}, '← All executions'))));
    return;
  }
  let def = null;
  // A code execution has no definition: its program's calls are its steps.
  const code = isCodeExecution(exec);
  if (!code) {
    try {
      def = await Keel.version(exec.workflow, exec.version, ctx.signal);
    } catch (err) {
      if (isAbort(err) || !ctx.alive) return;
      def = null; // the timeline still works from the history alone
    }
  }
  if (!ctx.alive) return;
  const defSteps = (def && def.definition && def.definition.steps) || null;

  // children: the executions its workflow steps started, by id (GET /v1/executions?parent=).
  // calls: what the history says of each key of a code execution (indexStepCalls).
  const state = {exec, events, lastSeq: events.length ? events[events.length - 1].seq : 0, children: new Map(), calls: code ? indexStepCalls(events) : null};
  const expandedSteps = new Set(); // step paths whose detail is open
  const treeState = {open: new Map(), limits: new Map()}; // containers opened or closed, for_each windows
  const expandedEvents = new Set();

  // ---- the skeleton; each part re-renders on its own
  const head = h('div', {class: 'page-head exec-head'});
  const alertBox = h('div');
  const summary = h('section', {class: 'card summary', 'aria-label': 'Summary'});
  const pending = h('section', {class: 'card pending', 'aria-labelledby': 'pending-h', hidden: true});
  // The diagram: the definition's boxes with this execution's state (only with a definition).
  const diagramOpen = diagramOpenPref();
  const diagramHost = h('div', {class: 'diagram-host diagram-scroll', id: 'exec-diagram-body', hidden: !diagramOpen, role: 'group', 'aria-label': 'Diagram of the steps with their state'});
  const diagramToggle = h('button', {type: 'button', class: 'btn btn-ghost btn-sm', id: 'diagram-toggle', 'aria-expanded': String(diagramOpen), 'aria-controls': 'exec-diagram-body'},
    h('span', null, diagramOpen ? 'Hide' : 'Show'));
  const diagramCard = h('section', {class: 'card diagram-card', id: 'diagram', 'aria-labelledby': 'diagram-h', hidden: !defSteps},
    h('div', {class: 'card-head'}, h('h2', {id: 'diagram-h'}, 'Diagram'), h('span', {class: 'muted small'}, 'the definition, with the state of each step'), diagramToggle),
    diagramHost);
  const timelineBody = h('div');
  const timelineCard = h('section', {class: 'card', id: 'timeline', 'aria-labelledby': 'timeline-h'},
    h('div', {class: 'card-head'}, h('h2', {id: 'timeline-h'}, 'Timeline')), timelineBody);
  const io = h('section', {class: 'io-grid io-main', 'aria-label': 'Input, output and error'});
  const historyCard = h('section', {class: 'card', id: 'history', 'aria-labelledby': 'history-h'});
  // A code execution's: how long its program has been idle (in the head), its handler, and its
  // keys a page at a time (?steps_page=N keys per request, 1 to 500) instead of the timeline.
  const idleLine = h('p', {class: 'subtitle idle-line', id: 'idle-line', hidden: true});
  const handler = code ? handlerCard() : null;
  const pageSize = Number(ctx.query.get('steps_page'));
  const keys = code ? keysCard({id, pageSize: Number.isInteger(pageSize) && pageSize >= 1 && pageSize <= 500 ? pageSize : KEY_PAGE, signal: ctx.signal}) : null;
  if (keys) ctx.onDispose(keys.dispose);
  root.replaceChildren(crumbs, head, alertBox, summary, pending, ...(code ? [handler.el, keys.el] : [diagramCard, timelineCard]), io, historyCard);

  // ---- actions
  function refreshSoon() {
    poll(true);
  }

  function signalDialog(preset) {
    const tl = deriveTimeline(state.exec, state.events, Date.now(), defSteps);
    const {waiting, ahead} = signalOffer(state.exec, defSteps, tl);
    const names = [...new Set([...waiting, ...ahead])];
    const nameInput = h('input', {type: 'text', class: 'input mono', id: 'signal-name', list: 'signal-names', autocomplete: 'off', spellcheck: 'false', required: true, value: preset || waiting[0] || names[0] || ''});
    const payload = h('textarea', {class: 'input mono', id: 'signal-payload', rows: '7', spellcheck: 'false'});
    payload.value = '{\n  \n}';
    const keyInput = h('input', {type: 'text', class: 'input mono', id: 'signal-key', autocomplete: 'off', spellcheck: 'false', placeholder: 'optional: makes a repeated send a no-op'});
    const payloadHint = h('p', {class: 'hint', id: 'signal-payload-hint'}, 'Any JSON value. It becomes the output of the step that waits for this signal. Leave empty for null.');
    payload.setAttribute('aria-describedby', 'signal-payload-hint');
    const checkPayload = () => {
      const t = payload.value.trim();
      if (!t) return true;
      try {
        JSON.parse(t);
        payload.classList.remove('invalid');
        payloadHint.classList.remove('bad');
        payloadHint.textContent = 'Valid JSON.';
        return true;
      } catch (e) {
        payload.classList.add('invalid');
        payloadHint.classList.add('bad');
        payloadHint.textContent = `Not valid JSON: ${e.message}`;
        return false;
      }
    };
    payload.addEventListener('input', checkPayload);
    const dlg = openDialog({
      title: 'Send a signal',
      description: waiting.length
        ? `Step waiting now: ${waiting.map((s) => `"${s}"`).join(', ')}. A signal sent before its wait is kept until the wait takes it.`
        : `No step waits right now; the signal is kept until a wait for its name takes it${ahead.length ? ` (ahead: ${ahead.map((s) => `"${s}"`).join(', ')})` : ''}.`,
      className: 'dialog-signal',
      body: h('div', {class: 'stack'},
        h('div', {class: 'field'}, h('label', {for: 'signal-name'}, 'Signal name'), nameInput,
          h('datalist', {id: 'signal-names'}, names.map((n) => h('option', {value: n})))),
        h('div', {class: 'field'}, h('label', {for: 'signal-payload'}, 'Payload (JSON)'), payload, payloadHint),
        h('div', {class: 'field'}, h('label', {for: 'signal-key'}, 'Idempotency key'), keyInput)),
      actions: [
        {label: 'Close', kind: 'secondary', id: 'dismiss'},
        {
          label: 'Send signal',
          kind: 'primary',
          icon: 'send',
          id: 'send-signal',
          submit: true,
          onClick: async () => {
            const name = nameInput.value.trim();
            if (!SIGNAL_NAME.test(name))
              throw {problem: {title: 'Invalid signal name', detail: 'Use 1-128 characters of A-Z a-z 0-9 _ - . :'}};
            if (!checkPayload()) throw {problem: {title: 'The payload is not valid JSON', detail: payloadHint.textContent}};
            const res = await Keel.signal(state.exec.id, name, payload.value.trim(), keyInput.value.trim());
            toast(res && res.duplicate ? `Signal "${name}" was already sent with this key` : `Signal "${name}" sent${res && res.consumed ? ' and taken by the waiting step' : ''}`);
            refreshSoon();
          },
        },
      ],
    });
    payload.focus();
    payload.setSelectionRange(4, 4);
    return dlg;
  }

  const ACTIONS = {
    cancel: {
      label: 'Cancel',
      icon: 'cancel',
      title: 'Cancel this execution?',
      message: 'It stops at the next safe point, runs the compensations of its completed steps in reverse order, and ends cancelled.',
      confirm: 'Cancel execution',
      danger: true,
      reason: true,
      done: 'Cancel requested',
    },
    terminate: {
      label: 'Terminate',
      icon: 'terminate',
      title: 'Terminate this execution?',
      message: 'It stops now and ends terminated. No compensation runs; an attempt in flight is abandoned.',
      confirm: 'Terminate now',
      danger: true,
      reason: true,
      done: 'Execution terminated',
    },
    retry: {
      label: 'Retry',
      icon: 'retry',
      title: 'Retry this execution?',
      message: 'It resumes at the step that failed, with fresh attempts. Completed steps keep their journaled results and are not run again.',
      confirm: 'Retry from the failed step',
      danger: false,
      reason: false,
      done: 'Execution resumed',
    },
  };

  function runAction(verb) {
    const a = ACTIONS[verb];
    confirmAction({
      title: a.title,
      message: a.message,
      confirmLabel: a.confirm,
      dismissLabel: 'Back',
      danger: a.danger,
      iconName: a.icon,
      withReason: a.reason,
      run: async (reason) => {
        await Keel.control(state.exec.id, verb, reason);
        toast(a.done);
        refreshSoon();
      },
    });
  }

  // ---- rendering
  let headKey = '';
  function renderHead(tl) {
    const x = state.exec;
    // Offer only what the API will accept: a signal while a wait is current or still ahead,
    // Retry only for a failure it can resume (see retryable and signalOffer in model.mjs).
    const offer = signalOffer(x, defSteps, tl);
    const retry = retryable(x, state.events);
    const parent = parentOf(x);
    const withChildren = startsChildren(x, defSteps);
    const key = JSON.stringify([x.status, tl.cancelRequested, x.workflow, x.version, offer.offer, retry.ok, parent, withChildren, x.tags]);
    if (key === headKey) return;
    headKey = key;
    const buttons = [];
    if (x.status === 'running') {
      if (offer.offer)
        buttons.push(h('button', {type: 'button', class: 'btn btn-primary', id: 'action-signal', title: offer.waiting.length ? `Waiting for ${offer.waiting.map((n) => `"${n}"`).join(', ')}` : offer.anytime ? 'Kept until a wait of the program takes it' : `Kept until the wait for ${offer.ahead.map((n) => `"${n}"`).join(', ')} starts`, onclick: () => signalDialog()}, icon('send'), h('span', null, 'Send signal')));
      if (tl.cancelRequested == null) buttons.push(h('button', {type: 'button', class: 'btn btn-secondary', id: 'action-cancel', onclick: () => runAction('cancel')}, icon('cancel'), h('span', null, 'Cancel')));
      buttons.push(h('button', {type: 'button', class: 'btn btn-danger-outline', id: 'action-terminate', onclick: () => runAction('terminate')}, icon('terminate'), h('span', null, 'Terminate')));
    }
    if (retry.ok)
      buttons.push(h('button', {type: 'button', class: 'btn btn-primary', id: 'action-retry', onclick: () => runAction('retry')}, icon('retry'), h('span', null, 'Retry')));
    const live = x.status === 'running'
      ? h('span', {class: 'live', title: `Refreshing every ${POLL_MS / 1000} s`}, h('span', {class: 'live-dot', 'aria-hidden': 'true'}), 'Live')
      : null;
    preserveFocus(head, () => head.replaceChildren(
      h('div', {class: 'head-main'},
        h('div', {class: 'title-row'}, h('h1', {class: 'mono exec-id'}, x.id), copyButton(() => x.id, 'Copy execution id', 'copy-id'), badge(x.status, 'badge-lg')),
        h('p', {class: 'subtitle'},
          isCodeExecution(x)
            ? [h('span', {class: 'tag tag-code', id: 'code-kind', title: 'Driven by its program\'s step calls, without a definition'}, 'code'), ' ',
              h('span', {class: 'code-name', id: 'exec-name'}, x.name)]
            : ['Workflow ', h('a', {href: paths.workflow(x.workflow), 'data-fk': 'wf'}, x.workflow), ' ',
              h('a', {href: paths.version(x.workflow, x.version), class: 'ver', title: `Definition version ${x.version}`, 'data-fk': 'ver'}, `v${x.version}`)],
          ' · started ', h('span', {class: 'rel-time', 'data-t': ms(x.created_at)}, fmtRelative(ms(x.created_at))),
          withChildren ? [' · ', h('a', {href: paths.executions({parent: x.id}), id: 'children-link', title: `The executions started by the workflow steps of ${x.id}`}, 'child executions')] : null),
        parent
          ? h('p', {class: 'subtitle parent-line', id: 'parent-line'}, icon('workflow'), 'Started by ',
            h('a', {href: paths.execution(parent.id), class: 'mono', id: 'parent-link', 'data-parent': parent.id}, parent.id),
            parent.step ? [' (step ', h('code', {class: 'parent-step'}, parent.step), ')'] : null)
          : null,
        tagList(x),
        code ? idleLine : null),
      h('div', {class: 'head-actions'}, live, buttons)));
  }

  // Why a failed execution has no Retry button (the API would refuse it with 409).
  function retryNote() {
    const r = retryable(state.exec, state.events);
    return r.ok ? null : h('div', {class: 'callout-body muted small no-retry'}, `Retry is not possible: ${r.reason}.`);
  }

  function renderAlert(tl) {
    const x = state.exec;
    if (x.status === 'failed' && x.error) {
      alertBox.replaceChildren(h('div', {class: 'callout callout-bad', role: 'status'},
        icon('alert'),
        h('div', null,
          h('strong', null, `Failed${x.error.step ? ` at step ${x.error.step}` : ''}${x.error.path && x.error.path !== x.error.step ? ` (${x.error.path})` : ''}${x.error.attempts ? ` after ${x.error.attempts} attempt${x.error.attempts === 1 ? '' : 's'}` : ''}`),
          h('div', {class: 'callout-body'}, x.error.type ? h('code', {class: 'err-type'}, x.error.type) : null, ' ', x.error.message || ''),
          retryNote())));
    } else if (x.status === 'cancelled' || x.status === 'terminated') {
      const comps = tl.rows.filter((r) => r.compensations.length).map((r) => r.step);
      alertBox.replaceChildren(h('div', {class: 'callout callout-warn', role: 'status'}, icon(x.status === 'cancelled' ? 'cancel' : 'terminate'),
        h('div', null, h('strong', null, x.status === 'cancelled' ? 'Cancelled' : 'Terminated'), ' at ', fmtAbs(ms(x.completed_at)),
          comps.length ? ` · compensated: ${comps.join(', ')}` : x.status === 'terminated' ? ' · no compensation ran' : ' · nothing to compensate',
          tl.reason ? h('div', {class: 'callout-body'}, 'Reason: ', h('q', null, tl.reason)) : null)));
    } else alertBox.replaceChildren();
  }

  function renderSummary(tl) {
    const x = state.exec;
    const c = stepCounts(x);
    const retries = tl.retries;
    const dur = (x.completed_at ? ms(x.completed_at) : Date.now()) - ms(x.created_at);
    summary.replaceChildren(h('dl', {class: 'facts'},
      h('div', null, h('dt', null, 'Started'), h('dd', null, timeFact(x.created_at))),
      h('div', null, h('dt', null, 'Ended'), h('dd', null, x.completed_at ? timeFact(x.completed_at) : h('span', {class: 'muted'}, 'still running'))),
      h('div', null, h('dt', null, 'Duration'), h('dd', {class: 'fact-big'}, fmtDuration(dur), x.completed_at ? '' : h('span', {class: 'muted small'}, ' so far'))),
      h('div', null, h('dt', null, 'Steps'), h('dd', {class: 'fact-big'}, `${c.done}`, h('span', {class: 'muted small'}, ` of ${c.total} completed`))),
      h('div', null, h('dt', null, 'Attempts'), h('dd', {class: 'fact-big'}, String(tl.attemptsTotal),
        retries ? h('span', {class: 'retry-note small'}, ` · ${retries} retr${retries === 1 ? 'y' : 'ies'}`) : h('span', {class: 'muted small'}, ' · no retries'))),
      h('div', null, h('dt', null, 'Events'), h('dd', {class: 'fact-big'}, String(state.events.length))),
      x.completed_at ? null : h('div', null, h('dt', null, 'Last change'), h('dd', null, timeFact(x.updated_at)))));
  }

  function renderPending(tl) {
    const items = pendingWork(state.exec, tl);
    pending.hidden = !items.length;
    if (!items.length) return pending.replaceChildren();
    const now = Date.now();
    const ICON = {attempt: 'activity', capacity: 'clockSmall', retry: 'retry', timer: 'sleep', wait: 'wait', child: 'workflow', compensation: 'compensate', cancelling: 'cancel', scheduled: 'clockSmall', buffered: 'wait'};
    preserveFocus(pending, () => pending.replaceChildren(
      h('div', {class: 'card-head'}, h('h2', {id: 'pending-h'}, 'Pending work'), h('span', {class: 'muted small'}, 'what the execution waits for now')),
      h('ul', {class: 'pending-list'}, items.slice(0, PENDING_MAX).map((p) =>
        h('li', {class: ['pending-item', `pk-${p.kind}`], 'data-kind': p.kind, 'data-step': p.step || ''},
          h('span', {class: 'pending-icon'}, icon(ICON[p.kind] || 'clockSmall')),
          h('div', {class: 'pending-text'},
            h('div', null, p.step ? h('span', {class: 'mono step-ref'}, p.step) : null, p.step ? ' · ' : null, p.text,
              p.child ? [' ', h('a', {href: paths.execution(p.child), class: 'mono child-link', 'data-fk': `pchild:${p.step}`}, p.child),
                state.children.get(p.child) ? [' ', badge(state.children.get(p.child).status, 'badge-sm')] : null] : null,
              p.due ? h('span', null, ' ', h('strong', null, p.kind === 'wait' ? `until ${fmtAbs(p.due)}` : fmtAbs(p.due)), h('span', {class: 'muted'}, ` (${fmtRelative(p.due, now)})`)) : null,
              p.kind === 'wait' && !p.due ? h('span', {class: 'muted'}, ' · no timeout') : null),
            p.since ? h('div', {class: 'muted small'}, `since ${fmtClock(p.since)} · ${fmtDuration(now - p.since)}`) : null,
            p.error ? h('div', {class: 'small err-text'}, `last error: ${[p.error.type, p.error.message].filter(Boolean).join(': ')}`) : null),
          p.kind === 'wait'
            ? h('button', {type: 'button', class: 'btn btn-secondary btn-sm', 'data-signal': p.signal, 'data-fk': `sig:${p.step}`, onclick: () => signalDialog(p.signal)}, icon('send'), h('span', null, `Send "${p.signal}"`))
            : null)),
        // A loop with many iterations at once would list them all: the timeline has the rest.
        items.length > PENDING_MAX
          ? h('li', {class: 'pending-item pending-more muted small', 'data-kind': 'more'}, `and ${items.length - PENDING_MAX} more (${countsText(kindCounts(items.slice(PENDING_MAX)))}); see the ${code ? 'steps' : 'timeline'}`)
          : null)));
  }

  // The overlay is one small entry per step of the definition (counts for a loop, however many
  // iterations): the SVG is drawn again only when it or the card's width changes.
  let overlay = null;
  let diagramKey = '';
  let diagramWidth = 0; // of the last drawing
  function drawDiagram() {
    if (!overlay || !defSteps || diagramHost.hidden) return;
    const width = Math.round(diagramHost.clientWidth || 720);
    const key = JSON.stringify([width, [...overlay.values()]]);
    if (key === diagramKey) return;
    diagramKey = key;
    const svg = renderDiagram(def.definition, {width, overlay: {steps: overlay, execution: state.exec.id}});
    const svgWidth = Number(svg.getAttribute('width'));
    svg.style.minWidth = `${Math.ceil(svgWidth * DIAGRAM_MIN_SCALE)}px`;
    const scrolled = diagramHost.scrollLeft;
    preserveFocus(diagramHost, () => diagramHost.replaceChildren(svg));
    // Wider than the card (a phone): it scrolls sideways, so the keyboard must reach it too. It
    // starts centred on the main line of steps; a live update keeps where the reader scrolled.
    if (diagramHost.scrollWidth > diagramHost.clientWidth + 1) {
      diagramHost.setAttribute('tabindex', '0');
      diagramHost.scrollLeft = svgWidth === diagramWidth ? scrolled : (diagramHost.scrollWidth - diagramHost.clientWidth) / 2;
    } else diagramHost.removeAttribute('tabindex');
    diagramWidth = svgWidth;
  }
  function renderDiagramCard(tree, tl) {
    if (!defSteps) return;
    overlay = diagramOverlay(tree, defSteps, {tl, children: state.children});
    drawDiagram();
  }
  diagramToggle.addEventListener('click', () => {
    const open = diagramToggle.getAttribute('aria-expanded') !== 'true';
    diagramToggle.setAttribute('aria-expanded', String(open));
    diagramToggle.firstChild.textContent = open ? 'Hide' : 'Show';
    diagramHost.hidden = !open;
    try {
      localStorage.setItem(DIAGRAM_OPEN_KEY, open ? 'open' : 'closed');
    } catch {
      // Storage refused (a private window): it stays as chosen on this page.
    }
    drawDiagram();
  });
  if (defSteps && typeof ResizeObserver === 'function') {
    const ro = new ResizeObserver(() => drawDiagram());
    ro.observe(diagramHost);
    ctx.onDispose(() => ro.disconnect());
  }

  let timelineEvents = -1;
  let timelineChildren = '';
  function renderTimelineCard(tl, tree) {
    // Someone working inside a step's detail keeps it until new events arrive.
    const a = document.activeElement;
    const kids = JSON.stringify([...state.children.values()].map((c) => [c.id, c.status]));
    if (a && a.closest && a.closest('.tl-detail') && timelineBody.contains(a) && timelineEvents === state.events.length && timelineChildren === kids) return;
    timelineEvents = state.events.length;
    timelineChildren = kids;
    preserveFocus(timelineBody, () => timelineBody.replaceChildren(renderTimeline(tl, state.exec, defSteps, {expanded: expandedSteps, tree: treeState, children: state.children, stepTree: tree})));
  }

  let ioKey = '';
  function renderIO() {
    const x = state.exec;
    const key = JSON.stringify([x.status, x.output, x.error]);
    if (key === ioKey) return;
    ioKey = key;
    const panels = [jsonPanel('Input', x.input, {id: 'panel-input'})];
    if (x.status === 'completed' || x.output !== null) panels.push(jsonPanel('Output', x.output, {id: 'panel-output'}));
    else panels.push(h('section', {class: 'json-panel placeholder', 'data-panel': 'output'}, h('div', {class: 'json-panel-head'}, h('span', {class: 'panel-title'}, 'Output')),
      h('p', {class: 'muted small pad'}, x.status === 'running' ? 'Not yet: the output is set when the execution completes.' : `None: the execution ${x.status}.`)));
    if (x.error) panels.push(jsonPanel('Error', x.error, {tone: 'error', id: 'panel-error'}));
    io.replaceChildren(...panels);
  }

  // History: the table grows as events arrive; expanded rows stay expanded.
  const tbody = h('tbody');
  const countEl = h('span', {class: 'muted small'});
  const filterInput = h('input', {type: 'search', class: 'input input-sm', id: 'history-filter', placeholder: 'Filter by type, step or path', 'aria-label': 'Filter events by type, step or path', autocomplete: 'off'});
  const expandAll = h('button', {type: 'button', class: 'btn btn-ghost btn-sm', id: 'history-expand-all'}, 'Expand all');
  const collapseAll = h('button', {type: 'button', class: 'btn btn-ghost btn-sm', id: 'history-collapse-all'}, 'Collapse all');
  const earlierBtn = h('button', {type: 'button', class: 'btn btn-secondary btn-sm', id: 'history-earlier'});
  const earlierRow = h('div', {class: 'history-earlier', hidden: true}, earlierBtn);
  historyCard.append(
    h('div', {class: 'card-head'}, h('h2', {id: 'history-h'}, 'Event history'), countEl, h('span', {class: 'grow'}), filterInput, expandAll, collapseAll),
    earlierRow,
    h('div', {class: 'table-wrap'},
      h('table', {class: 'table history-table'},
        h('thead', null, h('tr', null,
          h('th', {class: 'c-toggle'}, h('span', {class: 'sr-only'}, 'Expand')), h('th', {class: 'num'}, '#'), h('th', null, 'Time'),
          h('th', null, 'Event'), h('th', null, 'Step'), h('th', {class: 'num'}, 'Attempt'), h('th', null, 'Details'))),
        tbody)));

  function setEventOpen(tr, open) {
    const seq = Number(tr.dataset.seq);
    const btn = tr.querySelector('.ev-toggle');
    btn.setAttribute('aria-expanded', String(open));
    tr.classList.toggle('expanded', open);
    let detail = tr.nextElementSibling && tr.nextElementSibling.classList.contains('ev-detail') ? tr.nextElementSibling : null;
    if (open) {
      expandedEvents.add(seq);
      if (!detail) {
        const e = eventBySeq.get(seq);
        detail = h('tr', {class: 'ev-detail', id: `ev-${seq}-data`, 'data-seq': seq},
          h('td', {colspan: '7'}, h('div', {class: 'ev-detail-inner'},
            h('div', {class: 'ev-detail-head'}, h('span', {class: 'muted small'}, `data of event ${seq} · ${e.at}`), copyButton(() => JSON.stringify(e, null, 2), 'Copy event JSON')),
            jsonView(e.data, {depth: 4}))));
        tr.after(detail);
      }
      detail.hidden = false;
    } else {
      expandedEvents.delete(seq);
      if (detail) detail.hidden = true;
    }
  }

  function eventRow(e, t0) {
    const at = ms(e.at);
    const tone = eventTone(e.type);
    const btn = h('button', {type: 'button', class: 'ev-toggle', 'aria-expanded': 'false', 'aria-controls': `ev-${e.seq}-data`, 'aria-label': `Show data of event ${e.seq} (${e.type})`}, icon('chevron'));
    // Inside a parallel or a for_each the step id repeats; its path says which instance it was.
    const path = e.path && e.path !== e.step ? e.path : null;
    const tr = h('tr', {class: ['ev-row', `tone-${tone}`], 'data-seq': e.seq, 'data-type': e.type, 'data-step': e.step || '', 'data-path': e.path || e.step || ''},
      h('td', {class: 'c-toggle'}, btn),
      h('td', {class: 'num muted'}, String(e.seq)),
      h('td', {class: 'c-evtime'}, h('time', {datetime: e.at, title: `${fmtAbs(at)}\n${e.at}`}, fmtClock(at)), h('span', {class: 'offset'}, `+${fmtDuration(at - t0)}`)),
      h('td', null, h('span', {class: ['ev-type', `tone-${tone}`]}, e.type)),
      h('td', {class: 'mono c-step'}, e.step || '', path ? h('span', {class: 'ev-path', title: `path ${path}`}, path) : null),
      h('td', {class: 'num'}, e.attempt != null ? String(e.attempt) : ''),
      h('td', {class: 'ev-summary'}, eventSummary(e, fmtDuration)));
    tr.addEventListener('click', (ev) => {
      if (ev.target.closest('a') || (ev.target.closest('button') && ev.target.closest('button') !== btn)) return;
      if (window.getSelection && String(window.getSelection()).length) return; // selecting text
      setEventOpen(tr, btn.getAttribute('aria-expanded') !== 'true');
    });
    return tr;
  }

  // The rows drawn are the newest `historyLimit` events matching the filter (historyWindow);
  // new events are added at the end and the oldest rows drop off the top.
  const eventBySeq = new Map();
  let historyLimit = HISTORY_SHOWN;
  let looked = 0; // state.events looked at
  let matching = 0; // of them, those that match the filter
  let rowsShown = 0;
  const query = () => filterInput.value.trim().toLowerCase();
  const historyT0 = () => ms(state.exec.created_at) ?? (state.events[0] ? ms(state.events[0].at) : 0);

  function historyCounts() {
    const n = state.events.length;
    countEl.textContent = query() ? `${matching} of ${n} events` : `${n} event${n === 1 ? '' : 's'}`;
    const hidden = matching - rowsShown;
    earlierRow.hidden = hidden <= 0;
    earlierBtn.textContent = `Show ${Math.min(HISTORY_STEP, hidden)} earlier events (${hidden} not shown)`;
  }

  function rebuildHistory() {
    for (const e of state.events.slice(looked)) eventBySeq.set(e.seq, e);
    const win = historyWindow(state.events, query(), historyLimit);
    const t0 = historyT0();
    const frag = document.createDocumentFragment();
    for (const e of win.shown) frag.append(eventRow(e, t0));
    tbody.replaceChildren(frag);
    for (const tr of tbody.querySelectorAll('tr.ev-row')) if (expandedEvents.has(Number(tr.dataset.seq))) setEventOpen(tr, true);
    looked = state.events.length;
    matching = win.matching;
    rowsShown = win.shown.length;
    historyCounts();
  }

  function renderHistory() {
    if (!looked) return rebuildHistory();
    const q = query();
    const t0 = historyT0();
    const frag = document.createDocumentFragment();
    for (const e of state.events.slice(looked)) {
      eventBySeq.set(e.seq, e);
      if (!eventMatches(e, q)) continue;
      frag.append(eventRow(e, t0));
      matching++;
      rowsShown++;
    }
    looked = state.events.length;
    tbody.append(frag);
    // Keep to the window: the oldest rows (and their open data) go.
    while (rowsShown > historyLimit && tbody.firstElementChild) {
      const first = tbody.firstElementChild;
      const next = first.nextElementSibling;
      if (next && next.classList.contains('ev-detail')) next.remove();
      first.remove();
      rowsShown--;
    }
    historyCounts();
  }

  filterInput.addEventListener('input', rebuildHistory);
  earlierBtn.addEventListener('click', () => {
    historyLimit = rowsShown + HISTORY_STEP;
    rebuildHistory();
  });
  expandAll.addEventListener('click', () => {
    for (const tr of tbody.querySelectorAll('tr.ev-row')) setEventOpen(tr, true);
  });
  collapseAll.addEventListener('click', () => {
    for (const tr of tbody.querySelectorAll('tr.ev-row')) setEventOpen(tr, false);
  });

  function renderAll() {
    const tl = deriveTimeline(state.exec, state.events, Date.now(), defSteps);
    ctx.title(`${state.exec.id} (${state.exec.status})`);
    renderHead(tl);
    renderAlert(tl);
    renderSummary(tl);
    renderPending(tl);
    if (code) {
      renderIdleLine(idleLine, state.exec, state.events);
      handler.render(state.exec, state.events);
      keys.render(state.exec, state.calls);
    } else {
      // One step tree for the diagram and the timeline (a loop may have thousands of iterations).
      const tree = buildStepTree(state.exec, defSteps, tl.ifs);
      renderDiagramCard(tree, tl);
      renderTimelineCard(tl, tree);
    }
    renderIO();
    renderHistory();
  }

  // The statuses of its children, for the links of its workflow steps: one request for all of
  // them, again at each refresh while it runs (a child may end before its parent notices).
  async function loadChildren() {
    if (!startsChildren(state.exec, defSteps)) return;
    try {
      const page = await Keel.listExecutions({parent: state.exec.id, limit: CHILDREN_MAX}, ctx.signal);
      state.children = new Map(page.executions.map((c) => [c.id, c]));
    } catch (err) {
      if (isAbort(err)) throw err;
      // Keep the statuses we have: the links work without them.
    }
  }

  // ---- live updates
  let timer = null;
  let polling = false;
  let failures = 0;
  async function poll(now = false) {
    if (!ctx.alive) return;
    if (timer) clearTimeout(timer);
    timer = null;
    if (polling) {
      if (now) timer = ctx.later(() => poll(true), 150);
      return;
    }
    polling = true;
    try {
      // The execution first, then the history: the history is then at least as new.
      const x = await Keel.execution(id, ctx.signal);
      const more = await Keel.historyAll(id, state.lastSeq, ctx.signal);
      if (keys) await keys.load();
      if (!ctx.alive) return;
      state.exec = x;
      await loadChildren();
      if (!ctx.alive) return;
      if (more.length) {
        const fresh = more.filter((e) => e.seq > state.lastSeq);
        state.events.push(...fresh);
        state.lastSeq = state.events[state.events.length - 1].seq;
        if (code) indexStepCalls(fresh, state.calls);
      }
      failures = 0;
      renderAll();
    } catch (err) {
      if (isAbort(err) || !ctx.alive) return;
      failures++;
      if (failures === 3) toast(`Live updates: ${err.problem ? err.problem.title : err.message}; still trying`, 'error');
    } finally {
      polling = false;
    }
    schedule();
  }
  let settled = false;
  function schedule() {
    if (!ctx.alive) return;
    if (isFinal(state.exec.status)) {
      // A code execution's replays and last call are written about once a second: read it once
      // more shortly after it ended, for the counts of its last second.
      const ended = ms(state.exec.completed_at);
      if (code && !settled && ended != null && Date.now() - ended < 5000) {
        settled = true;
        timer = ctx.later(() => poll(), 2000);
      }
      return;
    }
    // A code execution with thousands of keys is read less often (its JSON lists them all).
    timer = ctx.later(() => (document.hidden ? schedule() : poll()), pollInterval(state.exec, POLL_MS) * Math.min(5, 1 + failures));
  }

  try {
    await loadChildren();
    if (keys) await keys.load();
  } catch (err) {
    if (isAbort(err) || !ctx.alive) return;
    // The keys are read again with the next refresh.
  }
  if (!ctx.alive) return;
  renderAll();
  schedule();
  // The program's idle time counts up every second between two reads of the execution.
  if (code) {
    const tick = setInterval(() => {
      if (ctx.alive) renderIdleLine(idleLine, state.exec, state.events);
    }, 1000);
    ctx.onDispose(() => clearInterval(tick));
  }
}
