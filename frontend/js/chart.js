// A card's value since creation as a small SVG line, with a marker at each buy and sell and a
// labelled tick at each split, dividend, deposit or withdrawal ("10:1 split", "deposit $5,000.00").
// The value is drawn on the card's capital now (capital + the P&L at each point: model.toHistory),
// so money the owner moved in or out is a labelled tick, not a jump.
import { svg, h } from './dom.js';
import { formatMoney } from './format.js';

const PAD = { top: 10, right: 6, bottom: 10, left: 6 };
const MARKER = 5;

// Keep the first, lowest, highest and last point of each pixel column: the shape survives,
// the element count stays near the chart's width.
export function thin(points, columns) {
  if (points.length <= columns * 2) return points;
  const first = points[0].at.getTime();
  const span = points[points.length - 1].at.getTime() - first || 1;
  const buckets = new Map();
  for (const p of points) {
    const key = Math.min(columns - 1, Math.floor(((p.at.getTime() - first) / span) * columns));
    const b = buckets.get(key);
    if (!b) buckets.set(key, { lo: p, hi: p, last: p });
    else {
      if (p.y < b.lo.y) b.lo = p;
      if (p.y > b.hi.y) b.hi = p;
      b.last = p;
    }
  }
  const kept = [];
  for (const b of buckets.values()) {
    const group = [b.lo, b.hi, b.last].sort((x, y) => x.at - y.at);
    for (const p of group) if (kept[kept.length - 1] !== p) kept.push(p);
  }
  kept.unshift(points[0]);
  return kept.filter((p, i) => i === 0 || p !== kept[i - 1]);
}

function series(history) {
  const useValue = history.points.some((p) => p.value !== null);
  return history.points
    .map((p) => ({ at: p.at, y: useValue ? p.value : p.price }))
    .filter((p) => p.y !== null);
}

function scales(points, baseline, width, height) {
  const t0 = points[0].at.getTime();
  const t1 = points[points.length - 1].at.getTime();
  let lo = Math.min(...points.map((p) => p.y));
  let hi = Math.max(...points.map((p) => p.y));
  if (Number.isFinite(baseline)) {
    lo = Math.min(lo, baseline);
    hi = Math.max(hi, baseline);
  }
  if (hi - lo < 1e-9) {
    lo -= 1;
    hi += 1;
  }
  const x = (t) => PAD.left + (t1 === t0 ? (width - PAD.left - PAD.right) / 2
    : ((t - t0) / (t1 - t0)) * (width - PAD.left - PAD.right));
  const y = (v) => PAD.top + (1 - (v - lo) / (hi - lo)) * (height - PAD.top - PAD.bottom);
  return { x, y, t0, t1 };
}

function valueAt(points, time) {
  let found = points[0];
  for (const p of points) {
    if (p.at.getTime() > time) break;
    found = p;
  }
  return found.y;
}

function marker(trade, cx, cy) {
  const up = trade.type === 'buy';
  const tip = up ? cy + 2 : cy - 2;
  const base = up ? tip + MARKER * 1.6 : tip - MARKER * 1.6;
  const shape = svg('polygon', {
    points: `${cx},${tip} ${cx - MARKER},${base} ${cx + MARKER},${base}`,
    class: `chart-marker chart-marker--${trade.type}`,
  });
  const label = `${trade.type} ${trade.shares ?? ''} @ ${formatMoney(trade.price)}`;
  shape.append(svg('title', {}, [label]));
  return shape;
}

const EVENT_CLASS = { cash_dividend: 'dividend', deposit: 'capital', withdrawal: 'capital' };

// A split, a dividend, a deposit or a withdrawal: a dashed vertical tick across the chart with its
// label at the top.
function eventMarker(event, cx, height) {
  const kind = EVENT_CLASS[event.kind] || 'split';
  const group = svg('g', { class: `chart-event chart-event--${kind}` });
  group.append(svg('line', { x1: cx, x2: cx, y1: PAD.top, y2: height - PAD.bottom, class: 'chart-event-line' }));
  const anchor = cx > 60 ? 'end' : 'start';
  const text = svg('text', { x: cx + (anchor === 'end' ? -3 : 3), y: PAD.top + 8, 'text-anchor': anchor,
    class: 'chart-event-label' });
  text.textContent = event.label;
  group.append(text, svg('title', {}, [event.label]));
  return group;
}

// Draws into container at its current pixel size; returns the number of trade markers drawn.
export function drawChart(container, history, { baseline = null, label = 'value' } = {}) {
  const width = Math.max(40, Math.floor(container.clientWidth));
  const height = Math.max(30, Math.floor(container.clientHeight));
  const points = history ? series(history) : [];
  if (points.length === 0) {
    const note = !history ? 'loading chart…' : history.failed ? 'chart unavailable' : 'no price data yet';
    container.replaceChildren(h('p', { className: 'chart-empty', text: note }));
    return 0;
  }
  const { x, y, t0, t1 } = scales(points, baseline, width, height);
  const root = svg('svg', {
    class: 'chart-svg', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img',
    'aria-label': `${label} since creation, ${history.trades.length} trades`,
  });
  if (Number.isFinite(baseline)) {
    const by = y(baseline).toFixed(1);
    root.append(svg('line', { x1: PAD.left, x2: width - PAD.right, y1: by, y2: by, class: 'chart-baseline' }));
  }
  const drawn = thin(points, width - PAD.left - PAD.right);
  const path = drawn.map((p) => `${x(p.at.getTime()).toFixed(1)},${y(p.y).toFixed(1)}`).join(' ');
  if (drawn.length === 1) {
    root.append(svg('circle', { cx: x(t0), cy: y(drawn[0].y), r: 2.5, class: 'chart-dot' }));
  } else {
    root.append(svg('polyline', { points: path, class: 'chart-line' }));
  }
  for (const event of history.events || []) {
    const time = event.at.getTime();
    if (time < t0 || time > t1) continue;
    root.append(eventMarker(event, x(time), height));
  }
  let markers = 0;
  for (const trade of history.trades) {
    const time = Math.min(Math.max(trade.at.getTime(), t0), t1);
    root.append(marker(trade, x(time), y(valueAt(points, time))));
    markers += 1;
  }
  container.replaceChildren(root);
  return markers;
}
