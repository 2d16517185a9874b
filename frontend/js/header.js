// The status line (market, next session, cash, total P&L, last update) and the warning banner.
import { setText } from './dom.js';
import { formatMoney, formatSignedMoney, formatDayTime, formatClock, formatCount } from './format.js';

export function totalPnl(cards) {
  return Math.round(cards.reduce((sum, c) => sum + (Number.isFinite(c.pnl) ? c.pnl : 0), 0) * 100) / 100;
}

function sessionText(listing) {
  if (!listing) return '';
  if (listing.marketOpen) return listing.nextClose ? `closes ${formatDayTime(listing.nextClose)}` : '';
  return listing.nextOpen ? `opens ${formatDayTime(listing.nextOpen)}` : '';
}

export function renderStatus(els, view) {
  const { listing } = view;
  if (listing) {
    setText(els.market, listing.marketOpen ? 'MARKET OPEN' : 'MARKET CLOSED');
    els.market.dataset.open = String(listing.marketOpen);
    setText(els.session, sessionText(listing));
    const pnl = totalPnl(listing.cards);
    setText(els.totalPnl, `P&L ${formatSignedMoney(pnl)}`);
    els.totalPnl.dataset.sign = pnl > 0 ? 'up' : pnl < 0 ? 'down' : 'flat';
  }
  if (view.pnlSummary) {
    const { openPnl, realizedPnl } = view.pnlSummary;
    setText(els.pnlSplit, `open ${formatSignedMoney(openPnl)} · realized ${formatSignedMoney(realizedPnl)}`);
  }
  if (view.cashError) setText(els.cash, 'CASH unavailable');
  else if (view.cash !== null) setText(els.cash, `CASH ${formatMoney(view.cash)}`);
  els.cash.title = view.cashError || '';
  if (view.lastUpdate) setText(els.updated, `UPDATED ${formatClock(view.lastUpdate)}`);
}

// Red: shares the cards count that the account does not hold (or the reverse). Their profit is
// not real until the owner reconciles, and the orchestrator makes no trades on those tickers.
export function brokerMessages(mismatches) {
  return (mismatches || []).map((m) => `${m.ticker}: the broker holds ${formatCount(m.broker)} shares, `
    + `the cards ${formatCount(m.cards)}. ${m.ticker} cards are frozen (no trades) until reconciled `
    + '(python -m scripts.reconcile).');
}

// The PAUSE banner: unmistakable, and distinct from the amber "data may be stale" one.
export function pauseMessage(pause) {
  if (!pause || !pause.paused) return '';
  const by = pause.by === 'daily order limit' ? 'the daily order limit' : 'the owner';
  const reason = pause.reason ? `: ${pause.reason}` : '';
  return `TRADING PAUSED by ${by} since ${formatDayTime(pause.since)}${reason}. No card sends orders; `
    + 'stopped cards wait to be sold. RESUME to trade again.';
}

export function renderPause(button, banner, pause) {
  const paused = Boolean(pause && pause.paused);
  setText(button, paused ? 'RESUME' : 'PAUSE');
  button.dataset.paused = String(paused);
  button.setAttribute('aria-label', paused ? 'Resume trading (PIN)' : 'Pause all trading (PIN)');
  renderBanner(banner, [pauseMessage(pause)]);
  document.body.dataset.paused = String(paused);
}

export function renderBanner(banner, messages) {
  const text = messages.join(' ');
  setText(banner, text);
  banner.hidden = text === '';
}
