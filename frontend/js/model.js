// Turns the API's JSON into the plain objects the page renders (one place to adapt to the wire).
import { parseUtc } from './format.js';

function num(value) {
  if (value === null || value === undefined || value === '') return null;
  const n = Number(value);
  return Number.isFinite(n) ? n : null;
}

function text(value) {
  return value === null || value === undefined ? '' : String(value);
}

// P&L as a fraction of the allocation: the API's percentage, else computed here.
function ratio(percent, pnl, capital) {
  if (percent !== null) return percent / 100;
  return pnl !== null && capital ? pnl / capital : null;
}

export function toCard(raw) {
  const capital = num(raw.initial_capital);
  const pnl = num(raw.pnl);
  return {
    id: raw.id,
    displayName: text(raw.display_name),
    algorithmType: text(raw.algorithm_type),
    ticker: text(raw.ticker),
    status: text(raw.status) || 'running',
    // 'running', or 'closing' while a stopped card's shares are still being sold.
    state: text(raw.state) || (raw.status === 'running' ? 'running' : 'closing'),
    createdAt: parseUtc(raw.created_at),
    stoppedAt: parseUtc(raw.stopped_at),
    initialCapital: capital,
    shares: num(raw.current_shares) ?? 0,
    tradeCount: num(raw.trade_count) ?? 0,
    price: num(raw.current_price),
    priceAt: parseUtc(raw.price_timestamp),
    value: num(raw.current_value),
    pnl,
    pnlRatio: ratio(num(raw.pnl_percent), pnl, capital),
  };
}

export function toListing(raw) {
  const body = raw || {};
  const market = body.market || {};
  return {
    cards: Array.isArray(body.algorithms) ? body.algorithms.map(toCard) : [],
    marketOpen: body.market_open === true,
    nextOpen: parseUtc(market.next_open),
    nextClose: parseUtc(market.next_close),
    // The market's "now" (the broker's clock), which bar times are compared with.
    marketNow: parseUtc(market.timestamp) || parseUtc(body.server_time),
  };
}

export function toCash(raw) {
  return { available: num(raw && raw.available_cash) };
}

// /api/health: is the orchestrator (the trading engine) alive, by the server's own threshold.
export function toHealth(raw) {
  const orchestrator = (raw && raw.orchestrator) || {};
  const stream = (raw && raw.stream) || {};
  return {
    orchestratorAlive: orchestrator.alive === true,
    heartbeatAgeSeconds: num(orchestrator.age_seconds),
    // Tickers the market-data feed refused for its symbol limit: their cards get no prices.
    refusedTickers: Array.isArray(stream.refused) ? stream.refused.map(String) : [],
    symbolLimit: num(stream.symbol_limit),
  };
}

// /api/algorithms/<id>/history: value points and trades, oldest first.
export function toHistory(raw) {
  const body = raw || {};
  const rawPoints = body.points || [];
  const points = rawPoints
    .map((p) => ({ at: parseUtc(p.timestamp), value: num(p.value), price: num(p.price) }))
    .filter((p) => p.at && (p.value !== null || p.price !== null))
    .sort((a, b) => a.at - b.at);
  const trades = (body.trades || [])
    .map((t) => ({ at: parseUtc(t.timestamp), type: text(t.type), shares: num(t.shares), price: num(t.price) }))
    .filter((t) => t.at && (t.type === 'buy' || t.type === 'sell'))
    .sort((a, b) => a.at - b.at);
  return { points, trades, initialCapital: num(body.initial_capital) };
}

export function availableAlgorithms(raw) {
  const list = raw && Array.isArray(raw.algorithms) ? raw.algorithms : [];
  return list.map((a) => ({ name: text(a.name), description: text(a.description) })).filter((a) => a.name);
}
