// A card's full story on one screen: price chart with fills and indicator lines, value and P&L
// (realized and unrealized, FIFO), open lots, fills and the owner's deposits and withdrawals, the
// last decision and why; DEPOSIT and WITHDRAW on a running card. The card list
// stays underneath and keeps polling; BACK (or Escape) returns to it.
import { h, setText } from './dom.js';
import { toDetail, toChart } from './model.js';
import { drawPriceChart, INDICATOR_STYLES } from './price-chart.js';
import { limitsSummary } from './limits.js';
import {
  formatMoney, formatSignedMoney, formatPercent, formatCount, formatDate, formatDayTime,
} from './format.js';

const SIDE = { buy: 'BUY', sell: 'SELL', deposit: 'DEPOSIT', withdrawal: 'WITHDRAW' };

function signClass(amount) {
  if (!Number.isFinite(amount) || amount === 0) return '';
  return amount > 0 ? 'up' : 'down';
}

function summaryRows(d) {
  const rows = [
    ['Value', formatMoney(d.value), 'value', ''],
    ['P&L', `${formatSignedMoney(d.pnl)} ${formatPercent(d.pnlRatio)}`, 'pnl', signClass(d.pnl)],
    ['Realized', formatSignedMoney(d.realizedPnl), 'realized', signClass(d.realizedPnl)],
    ['Unrealized', d.unrealizedPnl === null ? '—' : formatSignedMoney(d.unrealizedPnl), 'unrealized',
      signClass(d.unrealizedPnl)],
    ['Shares', formatCount(d.shares), 'shares', ''],
    ['Price', d.price === null ? 'no data' : `${formatMoney(d.price)} ${d.priceAt ? formatDayTime(d.priceAt) : ''}`,
      'price', ''],
    ['Allocation', formatMoney(d.capital), 'capital', ''],
    ['Cash', d.uninvestedCash === null ? '—' : formatMoney(d.uninvestedCash), 'cash', ''],
    ...(d.parameters ? [['Parameters', d.parameters, 'parameters', '']] : []),
    ['Since', formatDate(d.createdAt) + (d.stoppedAt ? ` – ${formatDate(d.stoppedAt)}` : ''), 'since', ''],
  ];
  return rows.flatMap(([label, value, field, sign]) => [
    h('dt', { text: label }), h('dd', { text: value, dataset: { field, sign } }),
  ]);
}

function decisionLine(label, decision, kind) {
  const shares = decision.shares ? ` ${formatCount(decision.shares)}` : '';
  let what = `${decision.action.toUpperCase()}${shares}`;
  if (kind === 'refused') what = `${decision.requestedAction.toUpperCase()} ${formatCount(decision.requestedShares)} refused`;
  else if (kind === 'error') what = 'ERROR';
  else if (decision.heldBack) what = `would ${decision.action.toUpperCase()}${shares} — ${heldWord(decision.heldBack)}`;
  const held = kind === 'decision' && decision.heldBack;
  return h('p', { className: `decision decision--${held ? 'held' : kind}`, dataset: { kind, held: held ? decision.heldBack : '' } }, [
    h('span', { className: 'decision-label', text: `${label} ` }),
    h('span', { className: 'decision-minute', text: formatDayTime(decision.minute), dataset: { field: `${kind}-minute` } }),
    h('span', { className: 'decision-action', text: ` ${what}: ` }),
    h('span', { className: 'decision-reason', text: decision.reason, dataset: { field: `${kind}-reason` } }),
  ]);
}

// "paused" or "cooling down": why a trade decision was made but not sent.
function heldWord(heldBack) {
  return heldBack.startsWith('cooling down') ? 'cooling down' : 'paused';
}

// The card's limits, and a tripped one with when and why; RESUME CARD and CHANGE with the PIN.
function limitsBlock(d, { onResume, onChange }) {
  const trip = d.limits && d.limits.trip;
  const lines = [h('p', { className: 'limits-summary', text: `Limits: ${limitsSummary(d.limits)}`, dataset: { field: 'limits' } })];
  if (trip) {
    const when = trip.until ? `cooling down until ${formatDayTime(trip.until)}` : `tripped ${formatDayTime(trip.at)}`;
    lines.push(h('p', { className: 'limit-trip', dataset: { field: 'trip', limit: trip.limit } }, [
      h('span', { className: 'limit-trip-when', text: `${when}: ` }), h('span', { text: trip.reason }),
    ]));
  }
  if (d.state === 'running') {
    const buttons = [h('button', { className: 'button', text: 'CHANGE LIMITS', attrs: { type: 'button', id: 'detail-change-limits' },
      on: { click: () => onChange(d) } })];
    if (trip) {
      buttons.unshift(h('button', { className: 'button button-primary', text: 'RESUME CARD',
        attrs: { type: 'button', id: 'detail-resume-card' }, on: { click: () => onResume(d) } }));
    }
    lines.push(h('div', { className: 'limits-actions' }, buttons));
  }
  return lines;
}

function decisionBlock(d) {
  const lines = [];
  if (d.lastDecision) lines.push(decisionLine('Last', d.lastDecision, 'decision'));
  if (d.lastRefusal) lines.push(decisionLine('Refused', d.lastRefusal, 'refused'));
  if (d.lastError) lines.push(decisionLine('Error', d.lastError, 'error'));
  if (!lines.length) lines.push(h('p', { className: 'hint', text: 'No decision recorded yet.' }));
  return lines;
}

function cells(values) {
  return h('tr', {}, values.map(([text, cls]) => h('td', { text, className: cls || '' })));
}

function lotRows(d) {
  if (!d.lots.length) return [h('tr', {}, [h('td', { text: 'no open lot', attrs: { colspan: 3 }, className: 'hint' })])];
  return d.lots.map((lot) => cells([
    [formatCount(lot.shares)], [formatMoney(lot.entryPrice)],
    [lot.unrealizedPnl === null ? '—' : formatSignedMoney(lot.unrealizedPnl), `sign-${signClass(lot.unrealizedPnl)}`],
  ]));
}

// Fills and the owner's deposits/withdrawals, newest first (a move has no shares and no price: its
// name spans those columns).
function transactionRows(d) {
  const rows = [
    ...d.transactions.map((t) => ({ at: t.at, row: cells([
      [formatDate(t.at)], [SIDE[t.type] || t.type, `side-${t.type}`], [formatCount(t.shares)], [formatMoney(t.price)],
      [formatMoney(t.value)],
    ]) })),
    ...d.capitalMoves.map((m) => ({ at: m.at, row: h('tr', { dataset: { kind: m.kind } }, [
      h('td', { text: formatDate(m.at) }),
      h('td', { text: SIDE[m.kind], className: `side-${m.kind}`, attrs: { colspan: 3 } }),
      h('td', { text: `${m.kind === 'deposit' ? '+' : '−'}${formatMoney(m.amount)}` }),
    ]) })),
  ];
  if (!rows.length) {
    return [h('tr', {}, [h('td', { text: 'no trade yet', attrs: { colspan: 5 }, className: 'hint' })])];
  }
  return rows.sort((a, b) => (b.at ? b.at.getTime() : 0) - (a.at ? a.at.getTime() : 0)).map((r) => r.row);
}

function legend(chart) {
  const parts = [];
  chart.indicators.forEach((line, k) => {
    const last = [...line.values].reverse().find((v) => v !== null);
    parts.push(h('span', { className: `legend-item ${INDICATOR_STYLES[k % 6]}`, dataset: { name: line.name } }, [
      h('span', { className: 'legend-swatch', text: '━ ' }),
      h('span', { text: `${line.name} ` }),
      h('span', { className: 'legend-value', text: last === undefined ? '—' : last.toFixed(2) }),
    ]));
  });
  const candles = chart.barsPerPoint > 1 ? `${chart.barsPerPoint}-minute bars` : 'minute bars';
  parts.push(h('span', { className: 'legend-note', text: chart.points.length ? candles : '' }));
  return parts;
}

// onMoveCapital(kind, detail): DEPOSIT / WITHDRAW pressed ('deposit' or 'withdraw'), on a running card;
// onResumeCard(detail), onChangeLimits(detail): RESUME CARD and CHANGE LIMITS pressed.
export function createDetailView({ api, els, onClose, onMoveCapital = () => {}, onResumeCard = () => {},
  onChangeLimits = () => {} }) {
  const state = {
    cardId: null, zoom: 'today', chart: null, chartKey: null, detail: null, seq: 0, loading: false, again: false,
  };

  function renderDetail(d) {
    setText(els.title, `${d.ticker} · ${d.algorithmType} · #${d.id}${d.state !== 'running' ? ` · ${d.state.toUpperCase()}` : ''}`);
    els.summary.replaceChildren(...summaryRows(d));
    const trip = d.limits && d.limits.trip;
    const tripAlert = trip ? `${trip.until ? 'COOLING DOWN' : 'LIMIT TRIPPED'}: ${trip.reason}` : '';
    const alerts = [tripAlert, d.frozen, d.stale].filter(Boolean);
    els.alerts.hidden = alerts.length === 0;
    setText(els.alerts, alerts.join(' · '));
    els.limits.replaceChildren(...limitsBlock(d, { onResume: onResumeCard, onChange: onChangeLimits }));
    els.decisions.replaceChildren(...decisionBlock(d));
    els.lots.replaceChildren(...lotRows(d));
    els.transactions.replaceChildren(...transactionRows(d));
    els.events.hidden = d.events.length === 0;
    els.eventsList.replaceChildren(...d.events.map((e) => h('li', { text: `${formatDate(e.at)} ${e.text}` })));
    els.root.dataset.state = d.state;
    els.actions.hidden = d.state !== 'running'; // a stopped card's capital cannot change
  }

  function redrawChart() {
    if (els.root.hidden) return;
    drawPriceChart(els.chart, state.chart);
    els.legend.replaceChildren(...(state.chart ? legend(state.chart) : []));
  }

  // The chart is asked again only when something it shows may have changed: a new bar, a new
  // fill, another zoom (its indicator lines cost the server a child process).
  function chartKey(d) {
    return [state.zoom, d ? d.priceAt && d.priceAt.getTime() : '', d ? d.tradeCount : ''].join('|');
  }

  // One load at a time: a poll that comes while one is running asks for one more afterwards.
  async function load() {
    if (state.loading) {
      state.again = true;
      return;
    }
    state.loading = true;
    try {
      await loadOnce();
    } finally {
      state.loading = false;
    }
    if (state.again && state.cardId !== null) {
      state.again = false;
      load();
    }
  }

  async function loadOnce() {
    const seq = ++state.seq;
    const { cardId } = state;
    let detail = null;
    try {
      detail = toDetail(await api.cardDetail(cardId));
    } catch {
      detail = null;
    }
    if (seq !== state.seq || cardId !== state.cardId) return;
    if (detail) renderDetail((state.detail = detail));
    const key = chartKey(detail || state.detail);
    if (!state.chart || state.chart.failed || state.chartKey !== key) {
      try {
        const chart = toChart(await api.cardChart(cardId, state.zoom));
        if (seq !== state.seq || cardId !== state.cardId) return;
        state.chart = chart;
        state.chartKey = key;
      } catch {
        if (!state.chart) state.chart = { points: [], indicators: [], trades: [], failed: true };
      }
      redrawChart();
    }
    els.root.dataset.loaded = String(seq);
  }

  function setZoom(zoom) {
    state.zoom = zoom;
    for (const button of els.zoom.querySelectorAll('[data-zoom]')) {
      button.setAttribute('aria-pressed', String(button.dataset.zoom === zoom));
    }
  }

  function open(cardId) {
    state.cardId = cardId;
    state.chart = null;
    state.detail = null;
    setZoom('today');
    els.summary.replaceChildren();
    els.limits.replaceChildren();
    els.decisions.replaceChildren();
    els.lots.replaceChildren();
    els.transactions.replaceChildren();
    els.actions.hidden = true; // until the card is read: only a running card takes or gives money
    setText(els.title, '');
    els.root.hidden = false;
    els.root.dataset.cardId = String(cardId);
    els.panels.scrollTop = 0;
    redrawChart();
    els.back.focus();
    return load();
  }

  function close() {
    if (els.root.hidden) return;
    els.root.hidden = true;
    state.cardId = null;
    state.seq += 1;
    onClose();
  }

  els.back.addEventListener('click', close);
  els.deposit.addEventListener('click', () => { if (state.detail) onMoveCapital('deposit', state.detail); });
  els.withdraw.addEventListener('click', () => { if (state.detail) onMoveCapital('withdraw', state.detail); });
  els.zoom.addEventListener('click', (event) => {
    const button = event.target.closest('[data-zoom]');
    if (!button || state.cardId === null) return;
    setZoom(button.dataset.zoom);
    state.chart = null;
    redrawChart();
    load();
  });
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && !els.root.hidden && !document.querySelector('dialog[open]')) close();
  });
  new ResizeObserver(redrawChart).observe(els.chart);

  return {
    open,
    close,
    current: () => state.detail,
    isOpen: () => !els.root.hidden,
    refresh: () => (els.root.hidden ? Promise.resolve() : load()),
  };
}
