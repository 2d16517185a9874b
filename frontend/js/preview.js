// The add dialog's "try it first": start a preview backtest, follow its progress, draw the result.
import { h, svg } from './dom.js';
import { formatMoney, formatPercent, parseUtc } from './format.js';
import { setMessage } from './modal.js';

const POLL_MS = 400;
const WIDTH = 600;
const HEIGHT = 150;
const PAD = 6;

function plainPercent(ratio) {
  return Number.isFinite(ratio) ? `${(ratio * 100).toFixed(1)}%` : '—';
}

export function progressText(state) {
  const p = state.progress || {};
  if (state.state === 'fetching' && p.total) return `Fetching history: ${p.done} of ${p.total} days…`;
  if (state.state === 'replaying') return 'Backtesting…';
  return 'Starting…';
}

// [label, text, data-figure, tone] rows of the figures grid.
export function figureRows(result) {
  const tone = (x) => (x > 0 ? 'up' : x < 0 ? 'down' : '');
  return [
    ['Return', formatPercent(result.total_return), 'total_return', tone(result.total_return)],
    ['Buy & hold', formatPercent(result.buy_hold_return), 'buy_hold_return', tone(result.buy_hold_return)],
    ['Max drawdown', plainPercent(result.max_drawdown), 'max_drawdown', ''],
    ['Trades', String(result.trades), 'trades', ''],
    ['Win rate', result.win_rate === null ? '—' : plainPercent(result.win_rate), 'win_rate', ''],
    ['In market', plainPercent(result.time_in_market), 'time_in_market', ''],
  ];
}

function polyline(values, low, high, className) {
  const span = high - low || 1;
  const step = values.length > 1 ? (WIDTH - 2 * PAD) / (values.length - 1) : 0;
  const points = values.map((v, i) => `${(PAD + i * step).toFixed(1)},${(PAD + (HEIGHT - 2 * PAD) * (1 - (v - low) / span)).toFixed(1)}`);
  return svg('polyline', { points: points.join(' '), class: `preview-line ${className}` });
}

export function chart(curve, capital) {
  const all = [...curve.equity, ...curve.buy_hold].filter(Number.isFinite);
  const low = Math.min(...all, capital);
  const high = Math.max(...all, capital);
  const first = parseUtc(curve.timestamp[0]);
  const last = parseUtc(curve.timestamp[curve.timestamp.length - 1]);
  const label = first && last ? `${first.toLocaleDateString()} – ${last.toLocaleDateString()}` : '';
  return svg('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, preserveAspectRatio: 'none', role: 'img',
    'aria-label': `Card value against buy and hold, ${label}` }, [
    polyline(curve.buy_hold, low, high, 'preview-line--hold'),
    polyline(curve.equity, low, high, 'preview-line--equity'),
  ]);
}

export function createPreview({ els, api }) {
  let running = false;
  let generation = 0;

  function clear() {
    generation += 1;
    els.preview.hidden = true;
    els.previewChart.replaceChildren();
    els.previewFigures.replaceChildren();
    setMessage(els.previewStatus, '');
  }

  function show(result) {
    els.previewChart.replaceChildren(chart(result.curve, result.initial_capital));
    els.previewFigures.replaceChildren(...figureRows(result).map(([label, value, key, tone]) => h('div', {}, [
      h('dt', { text: label }), h('dd', { text: value, className: tone, dataset: { figure: key } }),
    ])));
    setMessage(els.previewStatus, `${result.ticker} ${result.start} to ${result.end} (${result.days} trading days): `
      + `${formatMoney(result.initial_capital)} → ${formatMoney(result.final_value)}. Dashed: buy and hold.`);
  }

  async function run(fields) {
    if (running) return;
    running = true;
    const mine = ++generation;
    els.previewButton.disabled = true;
    els.preview.hidden = false;
    els.keyboard.hidden = true;
    els.previewChart.replaceChildren();
    els.previewFigures.replaceChildren();
    setMessage(els.previewStatus, 'Starting…');
    els.preview.scrollIntoView({ block: 'nearest' });
    try {
      let state = await api.startPreview(fields);
      while (!['done', 'failed', 'stopped'].includes(state.state)) {
        if (mine !== generation) return;
        setMessage(els.previewStatus, progressText(state));
        await new Promise((resolve) => { setTimeout(resolve, POLL_MS); });
        state = await api.getPreview(state.id);
      }
      if (mine !== generation) return;
      if (state.state === 'done') show(state.result);
      else setMessage(els.previewStatus, `Preview ${state.state === 'stopped' ? 'stopped' : 'failed'}: ${state.error}`, 'error');
    } catch (error) {
      if (mine === generation) setMessage(els.previewStatus, `No preview. ${error.message}`, 'error');
    } finally {
      running = false;
      els.previewButton.disabled = false;
      if (mine === generation) els.preview.scrollIntoView({ block: 'nearest' });
    }
  }

  return { run, clear };
}

