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

export function renderBanner(banner, messages) {
  const text = messages.join(' ');
  setText(banner, text);
  banner.hidden = text === '';
}
