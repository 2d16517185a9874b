// The detail view's price chart: closes as a line (candles when few enough to read), the
// algorithm's indicator lines, and a marker at each fill's own price. Points are spaced evenly,
// so nights and weekends take no room.
import { svg, h } from './dom.js';
import { formatMoney, formatDayTime } from './format.js';

const PAD = { top: 12, right: 8, bottom: 22, left: 76 };
const CANDLES_UP_TO = 90;
const MARKER = 7;
export const INDICATOR_STYLES = ['ind-0', 'ind-1', 'ind-2', 'ind-3', 'ind-4', 'ind-5'];

function extent(chart) {
  let lo = Infinity;
  let hi = -Infinity;
  const take = (v) => {
    if (v === null || !Number.isFinite(v)) return;
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  };
  for (const p of chart.points) { take(p.low); take(p.high); take(p.close); }
  for (const line of chart.indicators) for (const v of line.values) take(v);
  for (const t of chart.trades) take(t.price);
  if (hi - lo < 1e-9) { lo -= 1; hi += 1; }
  const margin = (hi - lo) * 0.04;
  return { lo: lo - margin, hi: hi + margin };
}

// Index of the point whose bucket holds `at` (a point is stamped with its bucket's last bar).
export function pointIndexOf(points, at) {
  const time = at.getTime();
  let lo = 0;
  let hi = points.length - 1;
  if (time >= points[hi].at.getTime()) return hi;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (points[mid].at.getTime() >= time) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

function axisLabels(root, { y, lo, hi, width, height, points }) {
  const label = (text, attrs) => root.append(svg('text', { class: 'chart-axis', ...attrs }, [text]));
  label(formatMoney(hi), { x: PAD.left - 4, y: y(hi) + 4, 'text-anchor': 'end' });
  label(formatMoney(lo), { x: PAD.left - 4, y: y(lo), 'text-anchor': 'end' });
  label(formatDayTime(points[0].at), { x: PAD.left, y: height - 5, 'text-anchor': 'start' });
  label(formatDayTime(points[points.length - 1].at), { x: width - PAD.right, y: height - 5, 'text-anchor': 'end' });
  root.append(svg('line', { x1: PAD.left, x2: PAD.left, y1: PAD.top, y2: height - PAD.bottom, class: 'chart-frame' }));
  root.append(svg('line', { x1: PAD.left, x2: width - PAD.right, y1: height - PAD.bottom, y2: height - PAD.bottom,
    class: 'chart-frame' }));
}

function candles(root, points, x, y, step) {
  const body = Math.max(1, Math.min(12, step * 0.6));
  for (const [i, p] of points.entries()) {
    const up = p.close >= p.open;
    const cx = x(i);
    const top = y(Math.max(p.open, p.close));
    const bottom = y(Math.min(p.open, p.close));
    const group = svg('g', { class: `candle candle--${up ? 'up' : 'down'}` });
    group.append(svg('line', { x1: cx, x2: cx, y1: y(p.high), y2: y(p.low), class: 'candle-wick' }));
    group.append(svg('rect', { x: cx - body / 2, y: top, width: body, height: Math.max(1, bottom - top), class: 'candle-body' }));
    root.append(group);
  }
}

function polyline(values, x, y) {
  const runs = [];
  let run = [];
  values.forEach((v, i) => {
    if (v === null || !Number.isFinite(v)) {
      if (run.length) runs.push(run);
      run = [];
      return;
    }
    run.push(`${x(i).toFixed(1)},${y(v).toFixed(1)}`);
  });
  if (run.length) runs.push(run);
  return runs;
}

function marker(trade, cx, cy) {
  const up = trade.type === 'buy';
  const tip = up ? cy + 1 : cy - 1;
  const base = up ? tip + MARKER * 1.6 : tip - MARKER * 1.6;
  const shape = svg('polygon', {
    points: `${cx},${tip} ${cx - MARKER},${base} ${cx + MARKER},${base}`,
    class: `chart-marker chart-marker--${trade.type}`, 'data-price': trade.price, 'data-type': trade.type,
  });
  shape.append(svg('title', {}, [`${trade.type} ${trade.shares ?? ''} @ ${formatMoney(trade.price)}`]));
  return shape;
}

// Draws `chart` into container at its pixel size; returns what was drawn (for the caption and tests).
export function drawPriceChart(container, chart) {
  const width = Math.max(120, Math.floor(container.clientWidth));
  const height = Math.max(80, Math.floor(container.clientHeight));
  if (!chart || chart.points.length === 0) {
    const note = !chart ? 'loading chart…' : chart.failed ? 'chart unavailable' : 'no price data in this range';
    container.replaceChildren(h('p', { className: 'chart-empty', text: note }));
    return { mode: 'empty', markers: 0 };
  }
  const { points } = chart;
  const { lo, hi } = extent(chart);
  const span = Math.max(1, points.length - 1);
  const plotW = width - PAD.left - PAD.right;
  const x = (i) => PAD.left + (points.length === 1 ? plotW / 2 : (i / span) * plotW);
  const y = (v) => PAD.top + (1 - (v - lo) / (hi - lo)) * (height - PAD.top - PAD.bottom);
  const root = svg('svg', {
    class: 'chart-svg', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img',
    'aria-label': `price, ${points.length} points, ${chart.trades.length} fills`,
  });
  axisLabels(root, { y, lo, hi, width, height, points });
  const mode = points.length <= CANDLES_UP_TO ? 'candles' : 'line';
  if (mode === 'candles') candles(root, points, x, y, plotW / Math.max(1, points.length));
  else root.append(svg('polyline', { points: polyline(points.map((p) => p.close), x, y)[0].join(' '), class: 'chart-line' }));
  chart.indicators.forEach((line, k) => {
    for (const run of polyline(line.values, x, y)) {
      root.append(svg('polyline', { points: run.join(' '), class: `chart-indicator ${INDICATOR_STYLES[k % 6]}`,
        'data-name': line.name }));
    }
  });
  for (const trade of chart.trades) root.append(marker(trade, x(pointIndexOf(points, trade.at)), y(trade.price)));
  container.replaceChildren(root);
  container.dataset.mode = mode;
  container.dataset.markers = String(chart.trades.length);
  return { mode, markers: chart.trades.length };
}
