// A workflow definition as an SVG flow: start, one box per step (kind icon, id, what it does,
// its own retry/timeout), end; compensations as dashed boxes beside the step they undo.
// A parallel forks into its branches side by side (each headed by its name) and joins again;
// a for_each is a dashed frame around its body, labelled with its items and concurrency; an if
// splits at its condition into a "then" and an "else" lane (an empty one without an else) that
// meet again. They nest to any depth: each part is laid out as a box of its own size, then
// placed. A workflow step's box links to the page of the workflow it starts.
// With an overlay (an execution's state, from diagramOverlay in model.mjs) each box also says
// the status of its step (counts per status inside a for_each), an if marks the lane it took
// and the lane it did not ("taken", "not taken"), a workflow step links to its child
// execution, and a wait for any of several signals names the one that ended it. The overlay
// adds a line to the boxes it annotates, measured like the rest, so nothing overlaps.
import {iconParts, paths, s} from './dom.mjs';
import {branchesOf, bodyOf, childWorkflowOf, ifBranchesOf, laneText, nestedLists, overlayParts, stepDetail, stepKind, stepPolicy, urlLabel} from './model.mjs';

const KIND_NAME = {activity: 'ACTIVITY', sleep: 'SLEEP', sleep_until: 'SLEEP UNTIL', wait: 'WAIT', parallel: 'PARALLEL', for_each: 'FOR EACH', set: 'SET', fail: 'FAIL', if: 'IF', workflow: 'WORKFLOW', unknown: 'STEP'};

function fit(text, px, charPx) {
  const max = Math.max(4, Math.floor(px / charPx));
  return text.length > max ? text.slice(0, max - 1) + '…' : text;
}

function glyph(name, x, y, size, cls) {
  return s('svg', {x, y, width: size, height: size, viewBox: '0 0 24 24', class: cls, fill: 'none', stroke: 'currentColor', 'stroke-width': 2, 'stroke-linecap': 'round', 'stroke-linejoin': 'round', 'aria-hidden': 'true'},
    iconParts(name).map(([tag, attrs]) => s(tag, attrs)));
}

const GAP_Y = 30; // between two steps of a sequence (an arrow)
const LINE_H = 17;
const BRANCH_GAP = 22; // between branches side by side
const FRAME_PAD = 14; // inside a for_each frame
const MIN_W = 200; // the narrowest step box
const HEAD_W = 300; // the widest header of a parallel or an if...
const HEAD_W_STATE = 350; // ...and with a state line ("completed · took else (condition false)")

function arrow(x, y1, y2) {
  return s('path', {class: 'd-edge', d: `M${x} ${y1} V${y2 - 6}`, 'marker-end': 'url(#d-arrow)'});
}

function line(d, cls = 'd-edge') {
  return s('path', {class: cls, d});
}

/** The overlay's state of step d, or null without an overlay. */
function stateOf(d, opt) {
  return (opt.ov && opt.ov.steps.get(d.id)) || null;
}

/** The state's line as text, for titles and the aria-label. */
function stateText(st) {
  return overlayParts(st).map((p) => p.sep + p.text).join('');
}

const STATE_CHAR = 6.7; // the width of a character of the state line, as fit() measures
const STATE_ROWS = 2; // a state line wraps once at most, then is cut

/**
 * The parts of a state line (overlayParts) laid out in rows of at most px: a part that does
 * not fit on the row starts the next one, its separator left at the end of the row before
 * (so the text still reads as one line); the last row is cut with "…" where the room ends
 * (the box's title has all of it). Returns [[part]], at least one row.
 */
function stateRows(st, px) {
  const per = Math.max(4, Math.floor((px - 12) / STATE_CHAR));
  const rows = [[]];
  let used = 0;
  for (const p of overlayParts(st)) {
    let sep = p.sep;
    if (used + sep.length + p.text.length > per && used > 0 && rows.length < STATE_ROWS) {
      if (sep) rows[rows.length - 1].push({text: sep, status: null});
      rows.push([]);
      used = 0;
      sep = '';
    }
    let text = sep + p.text;
    const cut = used + text.length > per;
    if (cut) text = text.slice(0, Math.max(1, per - used - 1)) + '…';
    rows[rows.length - 1].push({text, status: p.status});
    used += text.length;
    if (cut) break;
  }
  return rows;
}

/**
 * A box's state at (x, y) (the first row's baseline), rows from stateRows: a dot in the colour
 * of the state's status, then the parts, each count in its status's colour. One <text>, a
 * <tspan> per part, so that its text reads as the whole line.
 */
function stateLine(st, rows, x, y) {
  const t = s('text', {class: 'd-state-text', x: x + 12, y});
  rows.forEach((row, i) => row.forEach((p, j) =>
    t.append(s('tspan', {class: p.status ? ['d-count', `st-${p.status}`] : null, 'data-status': p.status,
      x: i && !j ? x + 12 : null, dy: i && !j ? LINE_H : null}, p.text))));
  return s('g', {class: ['d-state', `st-${st.status}`]}, s('circle', {class: 'd-dot', cx: x + 4, cy: y - 4, r: 4}), t);
}

/** Every step of a list, nested ones included. */
function countSteps(steps) {
  let n = 0;
  for (const d of Array.isArray(steps) ? steps : []) {
    n++;
    for (const b of nestedLists(d)) n += countSteps(b.steps);
  }
  return n;
}

/**
 * Layouts: {w, h, draw(x, y) -> element}; (x, y) is the top-left corner of the w x h box the
 * layout asked for; it enters at the middle of its top edge and leaves at the middle of its
 * bottom edge.
 */
function layoutStep(d, W, opt) {
  const kind = stepKind(d);
  if (kind === 'parallel') return layoutParallel(d, W, opt);
  if (kind === 'for_each') return layoutForEach(d, W, opt);
  if (kind === 'if') return layoutIf(d, W, opt);
  const leaf = layoutLeaf(d, W, opt);
  const child = childWorkflowOf(d);
  if (!child) return leaf;
  // The box of a workflow step is a link to the workflow it starts; with an execution's
  // state, to the child execution it started (inside a loop, to the list of the children).
  const st = stateOf(d, opt);
  const starts = `starts workflow ${child.name}${child.version != null ? ` version ${child.version}` : ''}`;
  let link = {href: paths.workflow(child.name), 'aria-label': `${d.id}: ${starts} (open its page)`};
  if (st && st.child)
    link = {href: paths.execution(st.child), 'data-child': st.child, 'aria-label': `${d.id}: ${starts}; child execution ${st.child}${st.childStatus ? `, ${st.childStatus}` : ''} (open it)`};
  else if (st && st.children && opt.ov.execution)
    link = {href: paths.executions({parent: opt.ov.execution}), 'data-children': st.children, 'aria-label': `${d.id}: ${starts}; ${st.children} child executions (open their list)`};
  return {...leaf, draw: (x, y) => s('a', {class: 'd-link', 'data-workflow': child.name, 'data-fk': `d:${d.id}`, ...link}, leaf.draw(x, y))};
}

function layoutSeq(steps, W, opt) {
  const items = (Array.isArray(steps) ? steps : []).filter((d) => d && typeof d === 'object').map((d) => layoutStep(d, W, opt));
  if (!items.length) {
    // An empty branch: a short line straight through.
    return {w: 60, h: 24, draw: (x, y) => s('g', {class: 'd-empty'}, line(`M${x + 30} ${y} V${y + 24}`), s('text', {class: 'd-policy', x: x + 36, y: y + 16}, 'no steps'))};
  }
  const w = Math.max(...items.map((it) => it.w));
  const h = items.reduce((n, it) => n + it.h, 0) + GAP_Y * (items.length - 1);
  return {
    w,
    h,
    draw: (x, y) => {
      const g = s('g', {class: 'd-seq'});
      const cx = x + w / 2;
      let yy = y;
      items.forEach((it, i) => {
        if (i) {
          g.append(arrow(cx, yy, yy + GAP_Y));
          yy += GAP_Y;
        }
        g.append(it.draw(cx - it.w / 2, yy));
        yy += it.h;
      });
      return g;
    },
  };
}

function layoutLeaf(d, W, opt) {
  const kind = stepKind(d);
  const detail = stepDetail(d);
  const policy = stepPolicy(d);
  const side = opt.sideComp && !!d.compensate; // the compensation as a box beside the step
  const compLine = d.compensate && !side ? `↺ compensate: POST ${urlLabel(d.compensate.url)}` : '';
  const st = stateOf(d, opt);
  const rows = st ? stateRows(st, W - 52) : [];
  const lines = 2 + (policy ? 1 : 0) + (compLine ? 1 : 0) + rows.length;
  const H = 16 + lines * LINE_H + (st ? 2 : 0);
  return {
    w: W,
    h: H,
    draw: (x, y) => {
      const textX = x + 40;
      const room = W - 52;
      const g = s('g', {class: ['d-step', `kind-${kind}`, st && `st-${st.status}`], 'data-step': d.id, 'data-kind': kind, 'data-status': st && st.status, 'data-signal': st && st.signal},
        s('title', null, [`${d.id} (${kind})`, detail, policy, d.compensate ? `compensate: POST ${d.compensate.url}` : '', st ? stateText(st) : ''].filter(Boolean).join('\n')),
        s('rect', {class: 'd-box', x, y, width: W, height: H, rx: 8}),
        s('rect', {class: 'd-band', x, y, width: 5, height: H, rx: 2}),
        s('circle', {class: 'd-icon-bg', cx: x + 22, cy: y + 22, r: 13}),
        glyph(kind, x + 14, y + 14, 16, 'd-icon'),
        s('text', {class: 'd-kind', x: x + W - 10, y: y + 20, 'text-anchor': 'end'}, KIND_NAME[kind] || 'STEP'),
        s('text', {class: 'd-id', x: textX, y: y + 21}, fit(d.id || '?', room - 80, 8.2)),
        s('text', {class: 'd-detail', x: textX, y: y + 21 + LINE_H}, fit(detail, room, 6.9)));
      let ly = y + 21 + 2 * LINE_H;
      if (policy) {
        g.append(s('text', {class: 'd-policy', x: textX, y: ly}, fit(policy, room, 6.6)));
        ly += LINE_H;
      }
      if (compLine) {
        g.append(s('text', {class: 'd-comp-line', x: textX, y: ly}, fit(compLine, room, 6.6)));
        ly += LINE_H;
      }
      if (st) g.append(stateLine(st, rows, textX, ly + 2));
      if (!side) return g;
      const bx = x + W + opt.gapX;
      const bh = 50;
      const by = y + (H - bh) / 2;
      const CW = opt.compW;
      return s('g', null, g,
        s('path', {class: 'd-comp-edge', d: `M${x + W} ${y + H / 2} H${bx}`}),
        s('g', {class: 'd-comp', 'data-compensates': d.id},
          s('title', null, `If a later step fails for good, or on cancel: POST ${d.compensate.url}`),
          s('rect', {x: bx, y: by, width: CW, height: bh, rx: 8}),
          glyph('compensate', bx + 10, by + 9, 14, 'd-icon'),
          s('text', {class: 'd-comp-title', x: bx + 30, y: by + 20}, 'compensate'),
          s('text', {class: 'd-detail', x: bx + 12, y: by + 38}, fit(`POST ${urlLabel(d.compensate.url)}`, CW - 22, 6.9))));
    },
  };
}

/** A header box for a parallel or an if: what it is, its id and its branches (and its state). */
function headBox(d, kind, W, st) {
  const rows = st ? stateRows(st, W - 52) : [];
  const H = 16 + (2 + rows.length) * LINE_H + (st ? 2 : 0);
  const detail = stepDetail(d);
  return {
    h: H,
    draw: (x, y) => s('g', {class: ['d-head', `kind-${kind}`, st && `st-${st.status}`]},
      st ? s('title', null, `${d.id} (${kind})\n${stateText(st)}`) : null,
      s('rect', {class: 'd-box d-head-box', x, y, width: W, height: H, rx: 8}),
      s('circle', {class: 'd-icon-bg', cx: x + 22, cy: y + 22, r: 13}),
      glyph(kind, x + 14, y + 14, 16, 'd-icon'),
      s('text', {class: 'd-kind', x: x + W - 10, y: y + 20, 'text-anchor': 'end'}, KIND_NAME[kind]),
      s('text', {class: 'd-id', x: x + 40, y: y + 21}, fit(d.id || '?', W - 132, 8.2)),
      s('text', {class: 'd-detail', x: x + 40, y: y + 21 + LINE_H}, fit(detail, W - 52, 6.9)),
      st ? stateLine(st, rows, x + 40, y + 23 + 2 * LINE_H) : null),
  };
}

function layoutParallel(d, W, opt) {
  const inner = {...opt, sideComp: false};
  const bw = Math.max(MIN_W, Math.min(W, 250));
  const branches = branchesOf(d).map((b) => ({name: b.name, seq: layoutSeq(b.steps, bw, inner)}));
  const st = stateOf(d, opt);
  const headW = Math.max(MIN_W, Math.min(W, st ? HEAD_W_STATE : HEAD_W));
  const head = headBox(d, 'parallel', headW, st);
  const LABEL_H = 22;
  const FORK = 16; // the fork bar's distance from the header, and of the join bar from the branches
  const bodyW = branches.reduce((n, b) => n + b.seq.w, 0) + BRANCH_GAP * Math.max(0, branches.length - 1);
  const w = Math.max(headW, bodyW);
  const bodyH = branches.length ? Math.max(...branches.map((b) => b.seq.h)) : 0;
  const h = head.h + FORK + 4 + GAP_Y + LABEL_H + 6 + bodyH + GAP_Y + 4 + FORK;
  return {
    w,
    h,
    draw: (x, y) => {
      const cx = x + w / 2;
      const g = s('g', {class: ['d-flow', 'd-parallel', st && `st-${st.status}`], 'data-step': d.id, 'data-kind': 'parallel', 'data-status': st && st.status},
        s('title', null, `${d.id} (parallel): every branch runs at once; it completes when all have`));
      g.append(head.draw(cx - headW / 2, y));
      const forkY = y + head.h + FORK;
      g.append(line(`M${cx} ${y + head.h} V${forkY}`));
      // Branch centres, left to right.
      let bx = x + (w - bodyW) / 2;
      const placed = branches.map((b) => {
        const p = {b, x: bx, cx: bx + b.seq.w / 2};
        bx += b.seq.w + BRANCH_GAP;
        return p;
      });
      const left = placed.length ? placed[0].cx : cx;
      const right = placed.length ? placed[placed.length - 1].cx : cx;
      g.append(s('rect', {class: 'd-bar', x: Math.min(left, cx) - 6, y: forkY, width: Math.max(right, cx) - Math.min(left, cx) + 12, height: 4, rx: 2}));
      const labelY = forkY + 4 + GAP_Y;
      const topY = labelY + LABEL_H + 6;
      const joinY = topY + bodyH + GAP_Y;
      for (const p of placed) {
        const bg = s('g', {class: 'd-branch', 'data-branch': p.b.name, 'data-parallel': d.id});
        bg.append(arrow(p.cx, forkY + 4, labelY));
        const lw = Math.min(p.b.seq.w, Math.max(60, p.b.name.length * 7.4 + 20));
        bg.append(s('g', {class: 'd-branch-label'},
          s('rect', {x: p.cx - lw / 2, y: labelY, width: lw, height: LABEL_H, rx: 11}),
          s('text', {x: p.cx, y: labelY + 15, 'text-anchor': 'middle'}, fit(p.b.name, lw - 14, 7.2))));
        bg.append(arrow(p.cx, labelY + LABEL_H, topY + 6));
        bg.append(p.b.seq.draw(p.x, topY));
        bg.append(line(`M${p.cx} ${topY + p.b.seq.h} V${joinY}`));
        g.append(bg);
      }
      g.append(s('rect', {class: 'd-bar', x: Math.min(left, cx) - 6, y: joinY, width: Math.max(right, cx) - Math.min(left, cx) + 12, height: 4, rx: 2}));
      g.append(line(`M${cx} ${joinY + 4} V${y + h}`));
      return g;
    },
  };
}

function layoutForEach(d, W, opt) {
  const inner = {...opt, sideComp: false};
  const f = d.for_each || {};
  const body = layoutSeq(bodyOf(d), Math.max(MIN_W, W - 2 * FRAME_PAD), inner);
  const st = stateOf(d, opt);
  const w = Math.max(Math.min(W, st ? HEAD_W_STATE : HEAD_W), body.w + 2 * FRAME_PAD);
  const rows = st ? stateRows(st, w - 52) : [];
  const HEAD = 16 + (2 + rows.length) * LINE_H + (st ? 2 : 0);
  const h = HEAD + GAP_Y + body.h + FRAME_PAD;
  const items = typeof f.items === 'string' ? f.items : JSON.stringify(f.items ?? null);
  const conc = f.concurrency ?? 10;
  return {
    w,
    h,
    draw: (x, y) => {
      const cx = x + w / 2;
      return s('g', {class: ['d-flow', 'd-foreach', st && `st-${st.status}`], 'data-step': d.id, 'data-kind': 'for_each', 'data-items': items, 'data-concurrency': conc, 'data-status': st && st.status},
        s('title', null, `${d.id} (for_each): runs its steps once per item of ${items}, at most ${conc} at once${st ? `\n${stateText(st)}` : ''}`),
        s('rect', {class: 'd-frame', x, y, width: w, height: h, rx: 10}),
        s('circle', {class: 'd-icon-bg', cx: x + 22, cy: y + 22, r: 13}),
        glyph('for_each', x + 14, y + 14, 16, 'd-icon'),
        s('text', {class: 'd-kind', x: x + w - 10, y: y + 20, 'text-anchor': 'end'}, KIND_NAME.for_each),
        s('text', {class: 'd-id', x: x + 40, y: y + 21}, fit(d.id || '?', w - 132, 8.2)),
        s('text', {class: 'd-detail d-items', x: x + 40, y: y + 21 + LINE_H}, fit(`each of ${items} · ${conc} at once`, w - 52, 6.9)),
        st ? stateLine(st, rows, x + 40, y + 23 + 2 * LINE_H) : null,
        arrow(cx, y + HEAD, y + HEAD + GAP_Y),
        body.draw(cx - body.w / 2, y + HEAD + GAP_Y));
    },
  };
}

/**
 * An if: a header with its condition, then a split into its lanes side by side, "then" and
 * "else" (an empty lane saying "none" when it has no else), which meet again below. A small
 * diamond marks the decision; there are no bars, which mean "all at once" for a parallel.
 */
function layoutIf(d, W, opt) {
  const inner = {...opt, sideComp: false};
  const bw = Math.max(MIN_W, Math.min(W, 250));
  const lanes = ifBranchesOf(d).map((b) => ({name: b.name, seq: layoutSeq(b.steps, bw, inner), none: false}));
  if (lanes.length < 2) {
    const NW = 90;
    lanes.push({name: 'else', none: true, seq: {w: NW, h: 24, draw: (x, y) => s('g', {class: 'd-empty'},
      line(`M${x + NW / 2} ${y} V${y + 24}`), s('text', {class: 'd-policy', x: x + NW / 2 + 6, y: y + 16}, 'none'))}});
  }
  const st = stateOf(d, opt);
  const headW = Math.max(MIN_W, Math.min(W, st ? HEAD_W_STATE : HEAD_W));
  const head = headBox(d, 'if', headW, st);
  const LABEL_H = 22;
  // With an execution's state, a line under each lane's label: "taken" or "not taken".
  const STATE_H = st ? 18 : 0;
  const SPLIT = 16; // the split's distance below the header, and of the meeting line below the lanes
  const bodyW = lanes.reduce((n, l) => n + l.seq.w, 0) + BRANCH_GAP * (lanes.length - 1);
  const w = Math.max(headW, bodyW);
  const bodyH = Math.max(...lanes.map((l) => l.seq.h));
  const h = head.h + SPLIT + GAP_Y + LABEL_H + STATE_H + 6 + bodyH + GAP_Y + SPLIT;
  const cond = typeof d.if === 'string' ? d.if : JSON.stringify(d.if);
  const laneOf = (name) => (st && st.lanes ? st.lanes[name] : null);
  const taken = lanes.filter((l) => laneOf(l.name) && laneOf(l.name).state === 'taken').map((l) => l.name);
  return {
    w,
    h,
    draw: (x, y) => {
      const cx = x + w / 2;
      const g = s('g', {class: ['d-flow', 'd-if', st && `st-${st.status}`], 'data-step': d.id, 'data-kind': 'if', 'data-condition': cond,
        'data-status': st && st.status, 'data-taken': taken.length ? taken.join(' ') : null},
        s('title', null, `${d.id} (if): runs "then" when ${cond} is true, ${lanes[1].none ? 'nothing' : '"else"'} when it is false`));
      g.append(head.draw(cx - headW / 2, y));
      const splitY = y + head.h + SPLIT;
      g.append(line(`M${cx} ${y + head.h} V${splitY}`));
      let lx = x + (w - bodyW) / 2;
      const placed = lanes.map((l) => {
        const p = {l, x: lx, cx: lx + l.seq.w / 2};
        lx += l.seq.w + BRANCH_GAP;
        return p;
      });
      const left = placed[0].cx;
      const right = placed[placed.length - 1].cx;
      g.append(line(`M${left} ${splitY} H${right}`));
      const labelY = splitY + GAP_Y;
      const topY = labelY + LABEL_H + STATE_H + 6;
      const joinY = topY + bodyH + GAP_Y;
      for (const p of placed) {
        const ls = laneOf(p.l.name);
        const state = ls ? ls.state : null;
        const said = laneText(ls, st && st.inLoop);
        const lg = s('g', {class: ['d-lane', p.l.none && 'd-lane-none', state === 'taken' && 'd-lane-taken', state === 'not_taken' && 'd-lane-not-taken'],
          'data-branch': p.l.name, 'data-if': d.id, 'data-state': state});
        lg.append(arrow(p.cx, splitY, labelY));
        const lw = Math.min(p.l.seq.w, 60);
        lg.append(s('g', {class: 'd-branch-label d-lane-label'},
          s('title', null, `${p.l.name}: ${p.l.name === 'then' ? 'when the condition is true' : 'when it is false'}${p.l.none ? ' (no else: nothing runs)' : ''}${said ? ` (${said})` : ''}`),
          s('rect', {x: p.cx - lw / 2, y: labelY, width: lw, height: LABEL_H, rx: 11}),
          s('text', {x: p.cx, y: labelY + 15, 'text-anchor': 'middle'}, p.l.name)));
        if (said) lg.append(s('text', {class: 'd-lane-state', x: p.cx, y: labelY + LABEL_H + 13, 'text-anchor': 'middle'}, fit(said, p.l.seq.w, 6.6)));
        lg.append(arrow(p.cx, labelY + LABEL_H + (said ? STATE_H : 0), topY + 6));
        lg.append(s('g', {class: 'd-lane-body'}, p.l.seq.draw(p.x, topY)));
        lg.append(line(`M${p.cx} ${topY + p.l.seq.h} V${joinY}`));
        g.append(lg);
      }
      g.append(line(`M${left} ${joinY} H${right}`));
      // The decision: a diamond where the lanes split.
      const r = 7;
      g.append(s('path', {class: 'd-diamond', d: `M${cx} ${splitY - r} L${cx + r} ${splitY} L${cx} ${splitY + r} L${cx - r} ${splitY} Z`}));
      g.append(line(`M${cx} ${joinY} V${y + h}`));
      return g;
    },
  };
}

/**
 * renderDiagram(definition, {width, overlay}) -> <svg>; width is the room the container has.
 * overlay (optional): an execution's state, {steps: diagramOverlay(...) (Map step id ->
 * state), execution: its id (for the link to the list of its children)}.
 */
export function renderDiagram(definition, {width = 720, overlay = null} = {}) {
  const steps = (definition && definition.steps) || [];
  const anyComp = steps.some((d) => d && d.compensate && !['parallel', 'for_each', 'if'].includes(stepKind(d)));
  const narrow = width < 560;
  const PAD = 12;
  const W = narrow ? Math.max(260, Math.min(width - 2 * PAD, 420)) : 350;
  const CW = 220;
  const GAP_X = 44;
  const opt = {sideComp: !narrow, gapX: GAP_X, compW: CW, ov: overlay && overlay.steps ? overlay : null};
  const seq = layoutSeq(steps, W, opt);
  const mainW = Math.max(W, seq.w);
  const totalW = narrow || !anyComp ? mainW + 2 * PAD : mainW + GAP_X + CW + 2 * PAD;
  const cx = PAD + mainW / 2;

  const parts = [];
  let y = PAD;
  const pill = (label, cls) => {
    const pw = 84;
    parts.push(s('g', {class: ['d-pill', cls]},
      s('rect', {x: cx - pw / 2, y, width: pw, height: 26, rx: 13}),
      s('text', {x: cx, y: y + 17, 'text-anchor': 'middle'}, label)));
    y += 26;
  };

  pill('start', 'd-start');
  if (steps.length) {
    parts.push(arrow(cx, y, y + GAP_Y));
    y += GAP_Y;
    parts.push(seq.draw(cx - seq.w / 2, y));
    y += seq.h;
  }
  parts.push(arrow(cx, y, y + GAP_Y));
  y += GAP_Y;
  pill('end', 'd-end');
  y += PAD;

  const describe = (d) => {
    const kind = stepKind(d);
    const st = stateOf(d, opt);
    return st ? `${describeStep(d, kind).replace(/\)$/, '')}; ${stateText(st)})` : describeStep(d, kind);
  };
  const describeStep = (d, kind) => {
    if (kind === 'parallel') return `${d.id} (parallel: ${branchesOf(d).map((b) => `${b.name}: ${b.steps.map(describe).join(', ') || 'no steps'}`).join('; ')})`;
    if (kind === 'for_each') return `${d.id} (for each: ${bodyOf(d).map(describe).join(', ')})`;
    if (kind === 'if') return `${d.id} (if ${d.if}: ${ifBranchesOf(d).map((b) => `${b.name}: ${b.steps.map(describe).join(', ') || 'no steps'}`).join('; ')}${Array.isArray(d.else) ? '' : '; no else'})`;
    if (kind === 'workflow') return `${d.id} (starts workflow ${childWorkflowOf(d) ? childWorkflowOf(d).name : '?'})`;
    return `${d.id} (${kind})`;
  };
  const n = countSteps(steps);
  const label = `${opt.ov ? `Diagram of this execution's ` : 'Diagram of '}${n} step${n === 1 ? '' : 's'}: ${steps.map(describe).join(', ')}`;
  return s('svg', {class: 'diagram', viewBox: `0 0 ${totalW} ${y}`, width: totalW, height: y, role: 'img', 'aria-label': label},
    s('defs', null, s('marker', {id: 'd-arrow', viewBox: '0 0 10 10', refX: 8, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse'},
      s('path', {d: 'M0 0 L10 5 L0 10 z', class: 'd-arrowhead'}))),
    parts);
}
