// One card per algorithm, kept in place between polls (scroll position and charts survive).
import { h, setText } from './dom.js';
import { drawChart } from './chart.js';
import { formatMoney, formatSignedMoney, formatPercent, formatCount, formatDate, formatDayTime } from './format.js';
import { tripText } from './limits.js';

export function pnlClass(pnl) {
  if (pnl > 0) return 'card--profit';
  if (pnl < 0) return 'card--loss';
  return 'card--flat';
}

function buildCard(card, onStop, onOpen) {
  const fields = {};
  const row = (label, key) => [h('dt', { text: label }), (fields[key] = h('dd', { dataset: { field: key } }))];
  const stop = h('button', {
    className: 'stop-button', text: 'STOP', attrs: { type: 'button' },
    on: { click: () => onStop(card.id) },
  });
  const chart = h('div', { className: 'card-chart', dataset: { chart: '' } });
  const parts = {
    name: h('h3', { className: 'card-name' }),
    ticker: h('span', { className: 'card-ticker' }),
    algorithm: h('span', { className: 'card-algorithm' }),
    closing: h('p', { className: 'card-closing', attrs: { hidden: '' } }),
    frozen: h('p', { className: 'card-frozen', text: 'frozen: broker disagrees', attrs: { hidden: '' } }),
    tripped: h('p', { className: 'card-tripped', attrs: { hidden: '' } }),
    pnl: h('span', { className: 'card-pnl-amount', dataset: { field: 'pnl' } }),
    pnlPercent: h('span', { className: 'card-pnl-percent', dataset: { field: 'pnl-percent' } }),
    since: h('span', { className: 'chart-since' }),
    priceAt: h('span', { className: 'chart-price-at' }),
    chart, stop, fields,
  };
  const root = h('article', {
    className: 'card', dataset: { cardId: card.id }, attrs: { tabindex: '0' },
    on: {
      click: (event) => { if (!event.target.closest('.stop-button')) onOpen(card.id); },
      keydown: (event) => { if (event.key === 'Enter' && event.target === root) onOpen(card.id); },
    },
  }, [
    parts.name,
    h('p', { className: 'card-meta' }, [
      parts.ticker, h('span', { className: 'card-sep', text: ' · ' }), parts.algorithm,
    ]),
    parts.closing,
    parts.frozen,
    parts.tripped,
    h('dl', { className: 'card-fields' }, [
      ...row('Allocation', 'capital'), ...row('Shares', 'shares'), ...row('Trades', 'trades'),
      ...row('Price', 'price'), ...row('Value', 'value'),
    ]),
    h('p', { className: 'card-pnl' }, [parts.pnl, parts.pnlPercent]),
    chart,
    h('p', { className: 'chart-caption' }, [parts.since, parts.priceAt]),
    stop,
  ]);
  return { root, parts };
}

function fillCard(entry, card, closing, frozen) {
  const { root, parts } = entry;
  root.classList.toggle('card--frozen', frozen);
  parts.frozen.hidden = !frozen;
  const trip = card.limits && card.limits.trip;
  root.classList.toggle('card--tripped', Boolean(trip) && !closing);
  parts.tripped.hidden = !trip || closing;
  setText(parts.tripped, tripText(trip));
  parts.tripped.title = trip ? trip.reason : '';
  root.classList.remove('card--profit', 'card--loss', 'card--flat');
  root.classList.add(pnlClass(card.pnl));
  root.classList.toggle('card--closing', closing);
  root.dataset.status = closing ? 'closing' : card.status;
  setText(parts.name, card.displayName);
  setText(parts.ticker, card.ticker);
  setText(parts.algorithm, card.algorithmType);
  setText(parts.fields.capital, formatMoney(card.capital));
  setText(parts.fields.shares, formatCount(card.shares));
  setText(parts.fields.trades, formatCount(card.tradeCount));
  setText(parts.fields.price, card.price === null ? 'no data' : formatMoney(card.price));
  setText(parts.fields.value, formatMoney(card.value));
  setText(parts.pnl, formatSignedMoney(card.pnl));
  setText(parts.pnlPercent, formatPercent(card.pnlRatio));
  setText(parts.since, `since ${formatDate(card.createdAt)}`);
  setText(parts.priceAt, card.priceAt ? `price ${formatDayTime(card.priceAt)}` : '');
  parts.closing.hidden = !closing;
  setText(parts.closing, card.shares > 0 ? `CLOSING: selling ${formatCount(card.shares)} shares` : 'CLOSING');
  parts.stop.disabled = closing;
  setText(parts.stop, closing ? 'CLOSING…' : 'STOP');
}

export function createCardsView({ container, empty, onStop, onOpen = () => {} }) {
  const entries = new Map();
  const resize = new ResizeObserver((observed) => {
    for (const item of observed) {
      const entry = [...entries.values()].find((e) => e.parts.chart === item.target);
      if (entry) redraw(entry);
    }
  });

  function redraw(entry) {
    const count = drawChart(entry.parts.chart, entry.history, { baseline: entry.card.capital });
    entry.parts.chart.dataset.markers = String(count);
  }

  function update(cards, closingIds, frozenTickers = new Set()) {
    const seen = new Set();
    for (const card of [...cards].sort((a, b) => Number(a.id) - Number(b.id))) {
      const key = String(card.id);
      seen.add(key);
      let entry = entries.get(key);
      if (!entry) {
        entry = { ...buildCard(card, onStop, onOpen), history: null };
        entries.set(key, entry);
        resize.observe(entry.parts.chart);
      }
      entry.card = card;
      fillCard(entry, card, card.state !== 'running' || closingIds.has(key), frozenTickers.has(card.ticker));
      container.append(entry.root);
    }
    for (const [key, entry] of entries) {
      if (seen.has(key)) continue;
      resize.unobserve(entry.parts.chart);
      entry.root.remove();
      entries.delete(key);
    }
    empty.hidden = entries.size > 0;
  }

  function setHistory(cardId, history) {
    const entry = entries.get(String(cardId));
    if (!entry) return;
    entry.history = history;
    redraw(entry);
  }

  return { update, setHistory };
}
