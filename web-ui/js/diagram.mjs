// A workflow definition as an SVG flow: start, one box per step (kind icon, id, what it does,
// its own retry/timeout), end; compensations as dashed boxes beside the step they undo.
import {iconParts, s} from './dom.mjs';
import {stepDetail, stepKind, stepPolicy, urlLabel} from './model.mjs';

const KIND_NAME = {activity: 'ACTIVITY', sleep: 'SLEEP', sleep_until: 'SLEEP UNTIL', wait: 'WAIT', unknown: 'STEP'};

function fit(text, px, charPx) {
  const max = Math.max(4, Math.floor(px / charPx));
  return text.length > max ? text.slice(0, max - 1) + '…' : text;
}

function glyph(name, x, y, size, cls) {
  return s('svg', {x, y, width: size, height: size, viewBox: '0 0 24 24', class: cls, fill: 'none', stroke: 'currentColor', 'stroke-width': 2, 'stroke-linecap': 'round', 'stroke-linejoin': 'round', 'aria-hidden': 'true'},
    iconParts(name).map(([tag, attrs]) => s(tag, attrs)));
}

/** renderDiagram(definition, {width}) -> <svg>; width is the room the container has. */
export function renderDiagram(definition, {width = 720} = {}) {
  const steps = (definition && definition.steps) || [];
  const anyComp = steps.some((d) => d && d.compensate);
  const narrow = width < 560;
  const PAD = 12;
  const W = narrow ? Math.max(260, Math.min(width - 2 * PAD, 420)) : 350;
  const CW = 220;
  const GAP_X = 44;
  const GAP_Y = 30;
  const lineH = 17;
  const totalW = narrow || !anyComp ? W + 2 * PAD : W + GAP_X + CW + 2 * PAD;
  const cx = PAD + W / 2;

  const parts = [];
  let y = PAD;
  const pill = (label, cls) => {
    const pw = 84;
    const g = s('g', {class: ['d-pill', cls]},
      s('rect', {x: cx - pw / 2, y, width: pw, height: 26, rx: 13}),
      s('text', {x: cx, y: y + 17, 'text-anchor': 'middle'}, label));
    parts.push(g);
    y += 26;
  };
  const arrow = () => {
    parts.push(s('path', {class: 'd-edge', d: `M${cx} ${y} V${y + GAP_Y - 6}`, 'marker-end': 'url(#d-arrow)'}));
    y += GAP_Y;
  };

  pill('start', 'd-start');
  for (const d of steps) {
    arrow();
    const kind = stepKind(d);
    const detail = stepDetail(d);
    const policy = stepPolicy(d);
    const compLine = narrow && d.compensate ? `↺ compensate: POST ${urlLabel(d.compensate.url)}` : '';
    const lines = 2 + (policy ? 1 : 0) + (compLine ? 1 : 0);
    const H = 16 + lines * lineH;
    const x = PAD;
    const textX = x + 40;
    const room = W - 52;
    const g = s('g', {class: ['d-step', `kind-${kind}`], 'data-step': d.id, 'data-kind': kind},
      s('title', null, [`${d.id} (${kind})`, detail, policy, d.compensate ? `compensate: POST ${d.compensate.url}` : ''].filter(Boolean).join('\n')),
      s('rect', {class: 'd-box', x, y, width: W, height: H, rx: 8}),
      s('rect', {class: 'd-band', x, y, width: 5, height: H, rx: 2}),
      s('circle', {class: 'd-icon-bg', cx: x + 22, cy: y + 22, r: 13}),
      glyph(kind, x + 14, y + 14, 16, 'd-icon'),
      s('text', {class: 'd-kind', x: x + W - 10, y: y + 20, 'text-anchor': 'end'}, KIND_NAME[kind] || 'STEP'),
      s('text', {class: 'd-id', x: textX, y: y + 21}, fit(d.id || '?', room - 80, 8.2)),
      s('text', {class: 'd-detail', x: textX, y: y + 21 + lineH}, fit(detail, room, 6.9)));
    let ly = y + 21 + 2 * lineH;
    if (policy) {
      g.append(s('text', {class: 'd-policy', x: textX, y: ly}, fit(policy, room, 6.6)));
      ly += lineH;
    }
    if (compLine) g.append(s('text', {class: 'd-comp-line', x: textX, y: ly}, fit(compLine, room, 6.6)));
    parts.push(g);

    if (d.compensate && !narrow) {
      const bx = PAD + W + GAP_X;
      const bh = 50;
      const by = y + (H - bh) / 2;
      parts.push(
        s('path', {class: 'd-comp-edge', d: `M${PAD + W} ${y + H / 2} H${bx}`}),
        s('g', {class: 'd-comp', 'data-compensates': d.id},
          s('title', null, `If a later step fails for good, or on cancel: POST ${d.compensate.url}`),
          s('rect', {x: bx, y: by, width: CW, height: bh, rx: 8}),
          glyph('compensate', bx + 10, by + 9, 14, 'd-icon'),
          s('text', {class: 'd-comp-title', x: bx + 30, y: by + 20}, 'compensate'),
          s('text', {class: 'd-detail', x: bx + 12, y: by + 38}, fit(`POST ${urlLabel(d.compensate.url)}`, CW - 22, 6.9))));
    }
    y += H;
  }
  arrow();
  pill('end', 'd-end');
  y += PAD;

  const label = `Diagram of ${steps.length} step${steps.length === 1 ? '' : 's'}: ${steps.map((d) => `${d.id} (${stepKind(d)})`).join(', ')}`;
  return s('svg', {class: 'diagram', viewBox: `0 0 ${totalW} ${y}`, width: totalW, height: y, role: 'img', 'aria-label': label},
    s('defs', null, s('marker', {id: 'd-arrow', viewBox: '0 0 10 10', refX: 8, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse'},
      s('path', {d: 'M0 0 L10 5 L0 10 z', class: 'd-arrowhead'}))),
    parts);
}
