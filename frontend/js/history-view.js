// The record of what is over: stopped cards with their dates, trades and final realized P&L, and
// the account's P&L per trading day as bars (green up, red down) around a zero line.
import { h, svg, setText } from './dom.js';
import { toHistoryView } from './model.js';
import { formatSignedMoney, formatCount, formatDate } from './format.js';

const PAD = { top: 16, right: 8, bottom: 22, left: 8 };

function dayLabel(date) {
  const [y, m, d] = date.split('-').map(Number);
  return new Date(y, m - 1, d).toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
}

export function drawDailyBars(container, days) {
  const width = Math.max(120, Math.floor(container.clientWidth));
  const height = Math.max(60, Math.floor(container.clientHeight));
  if (!days.length) {
    container.replaceChildren(h('p', { className: 'chart-empty', text: 'no trading day yet' }));
    return;
  }
  const values = days.map((d) => d.pnl);
  const hi = Math.max(0, ...values);
  const lo = Math.min(0, ...values);
  const range = hi - lo || 1;
  const y = (v) => PAD.top + ((hi - v) / range) * (height - PAD.top - PAD.bottom);
  const slot = (width - PAD.left - PAD.right) / days.length;
  const barW = Math.max(2, Math.min(48, slot * 0.7));
  const root = svg('svg', { class: 'chart-svg', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img',
    'aria-label': `daily P&L, ${days.length} days` });
  root.append(svg('line', { x1: PAD.left, x2: width - PAD.right, y1: y(0), y2: y(0), class: 'chart-baseline' }));
  const every = Math.ceil(days.length / Math.max(1, Math.floor((width - PAD.left - PAD.right) / 70)));
  days.forEach((day, i) => {
    const cx = PAD.left + slot * (i + 0.5);
    const top = y(Math.max(0, day.pnl));
    const bar = svg('rect', {
      x: cx - barW / 2, y: top, width: barW, height: Math.max(1, y(Math.min(0, day.pnl)) - top),
      class: `pnl-bar pnl-bar--${day.pnl > 0 ? 'up' : day.pnl < 0 ? 'down' : 'flat'}`,
      'data-date': day.date, 'data-pnl': day.pnl,
    });
    bar.append(svg('title', {}, [`${day.date} ${formatSignedMoney(day.pnl)}`]));
    root.append(bar);
    if (i % every === 0 || i === days.length - 1) {
      root.append(svg('text', { x: cx, y: height - 6, class: 'chart-axis', 'text-anchor': 'middle' }, [dayLabel(day.date)]));
    }
  });
  const last = days[days.length - 1];
  root.append(svg('text', { x: width - PAD.right, y: 12, class: 'chart-axis', 'text-anchor': 'end' },
    [`${dayLabel(last.date)} ${formatSignedMoney(last.pnl)} · total ${formatSignedMoney(last.cumulative)}`]));
  container.replaceChildren(root);
}

function closedRow(card) {
  const sign = card.realizedPnl > 0 ? 'up' : card.realizedPnl < 0 ? 'down' : '';
  return h('tr', { dataset: { cardId: card.id } }, [
    h('td', {}, [h('span', { className: 'card-ticker', text: card.ticker }),
      h('span', { className: 'hint', text: ` ${card.algorithmType} #${card.id}${card.parameters ? ` ${card.parameters}` : ''}` })]),
    h('td', { text: formatDate(card.createdAt) }),
    h('td', { text: card.state === 'closing' ? 'closing…' : formatDate(card.stoppedAt) }),
    h('td', { text: formatCount(card.tradeCount) }),
    h('td', { text: formatSignedMoney(card.realizedPnl), className: `sign-${sign}`, dataset: { field: 'realized' } }),
  ]);
}

export function createHistoryView({ api, els, onClose }) {
  let view = null;

  function redraw() {
    if (!els.root.hidden && view) drawDailyBars(els.daily, view.daily);
  }

  async function load() {
    try {
      view = toHistoryView(await api.historyView());
    } catch (error) {
      setText(els.totals, `History unavailable: ${error.message}`);
      return;
    }
    setText(els.totals, `open ${formatSignedMoney(view.openPnl)} · realized ${formatSignedMoney(view.realizedPnl)}`);
    els.closed.replaceChildren(...view.closed.map(closedRow));
    els.empty.hidden = view.closed.length > 0;
    redraw();
    els.root.dataset.loaded = 'true';
  }

  function open() {
    els.root.hidden = false;
    els.root.dataset.loaded = 'false';
    els.back.focus();
    return load();
  }

  function close() {
    if (els.root.hidden) return;
    els.root.hidden = true;
    onClose();
  }

  els.back.addEventListener('click', close);
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && !els.root.hidden && !document.querySelector('dialog[open]')) close();
  });
  new ResizeObserver(redraw).observe(els.daily);
  return { open, close, isOpen: () => !els.root.hidden, refresh: () => (els.root.hidden ? Promise.resolve() : load()) };
}
