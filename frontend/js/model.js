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

// P&L as a fraction of all the capital the card was given: the API's percentage, else computed here.
function ratio(percent, pnl, capital) {
  if (percent !== null) return percent / 100;
  return pnl !== null && capital ? pnl / capital : null;
}

// The account-wide PAUSE: while paused no card sends orders (the orchestrator still lets them decide).
export function toPause(raw) {
  const body = raw || {};
  return {
    paused: body.paused === true, since: parseUtc(body.since), by: text(body.paused_by), reason: text(body.reason),
  };
}

// A card's limits (null when none were set) and its trip: which limit, when, why, until when.
export function toLimits(raw) {
  if (!raw || typeof raw !== 'object') return null;
  const trip = raw.trip && typeof raw.trip === 'object' ? {
    limit: text(raw.trip.limit), at: parseUtc(raw.trip.at), reason: text(raw.trip.reason),
    until: parseUtc(raw.trip.until),
  } : null;
  return {
    maxDrawdownPercent: num(raw.max_drawdown_percent), dailyLossLimit: num(raw.daily_loss_limit),
    maxTradesPerDay: num(raw.max_trades_per_day), cooldownMinutes: num(raw.cooldown_minutes),
    onTrip: raw.on_trip === 'liquidate' ? 'liquidate' : 'pause', trip,
  };
}

// The API's field names, for sending limits back.
export function limitsBody(limits) {
  const l = limits || {};
  return {
    max_drawdown_percent: l.maxDrawdownPercent ?? null, daily_loss_limit: l.dailyLossLimit ?? null,
    max_trades_per_day: l.maxTradesPerDay ?? null, cooldown_minutes: l.cooldownMinutes ?? null,
    on_trip: l.onTrip === 'liquidate' ? 'liquidate' : 'pause',
  };
}

export const LIMIT_NAMES = {
  max_drawdown: 'max loss from peak', daily_loss: 'daily loss', max_trades: 'trades a day', cooldown: 'cooldown',
};

export function toCard(raw) {
  const initialCapital = num(raw.initial_capital);
  // The allocation now (after deposits and withdrawals); older servers sent only initial_capital.
  const capital = num(raw.capital) ?? initialCapital;
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
    initialCapital,
    capital,
    deposits: num(raw.deposits) ?? 0,
    withdrawals: num(raw.withdrawals) ?? 0,
    uninvestedCash: num(raw.uninvested_cash),
    shares: num(raw.current_shares) ?? 0,
    tradeCount: num(raw.trade_count) ?? 0,
    price: num(raw.current_price),
    priceAt: parseUtc(raw.price_timestamp),
    value: num(raw.current_value),
    pnl,
    pnlRatio: ratio(num(raw.pnl_percent), pnl, initialCapital + (num(raw.deposits) ?? 0)),
    limits: toLimits(raw.limits),
  };
}

export function toListing(raw) {
  const body = raw || {};
  const market = body.market || {};
  return {
    cards: Array.isArray(body.algorithms) ? body.algorithms.map(toCard) : [],
    pause: toPause(body.pause),
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
// clock_check.in_sync === false: the daemon refuses to trade on a clock it cannot trust.
export function toHealth(raw) {
  const orchestrator = (raw && raw.orchestrator) || {};
  const mismatches = raw && Array.isArray(raw.position_mismatches) ? raw.position_mismatches : [];
  const stream = (raw && raw.stream) || {};
  const clock = (raw && raw.clock_check) || {};
  return {
    orchestratorAlive: orchestrator.alive === true,
    heartbeatAgeSeconds: num(orchestrator.age_seconds),
    clockSkewSeconds: clock.in_sync === false ? num(clock.skew_seconds) : null,
    // Tickers the market-data feed refused for its symbol limit: their cards get no prices.
    refusedTickers: Array.isArray(stream.refused) ? stream.refused.map(String) : [],
    symbolLimit: num(stream.symbol_limit),
    // Tickers whose cards and broker disagree: the orchestrator trades none of their cards.
    mismatches: mismatches
      .map((m) => ({ ticker: text(m && m.ticker), broker: num(m && m.broker), cards: num(m && m.cards) }))
      .filter((m) => m.ticker),
  };
}

// A point's value on today's capital: capital now + the P&L then, so a deposit or a withdrawal
// is not drawn as a jump (the line moves only with the card's gains and losses).
function valueOnCapital(p, capital) {
  const pnl = num(p.pnl);
  return pnl !== null && capital !== null ? capital + pnl : num(p.value);
}

// /api/algorithms/<id>/history: value points, trades, splits/dividends and capital moves, oldest first.
export function toHistory(raw) {
  const body = raw || {};
  const rawPoints = body.points || [];
  const capital = num(body.capital) ?? num(body.initial_capital);
  const points = rawPoints
    .map((p) => ({ at: parseUtc(p.timestamp), value: valueOnCapital(p, capital), price: num(p.price) }))
    .filter((p) => p.at && (p.value !== null || p.price !== null))
    .sort((a, b) => a.at - b.at);
  const trades = (body.trades || [])
    .map((t) => ({ at: parseUtc(t.timestamp), type: text(t.type), shares: num(t.shares), price: num(t.price) }))
    .filter((t) => t.at && (t.type === 'buy' || t.type === 'sell'))
    .sort((a, b) => a.at - b.at);
  const events = [...(body.corporate_actions || []), ...(body.capital_moves || [])]
    .map((e) => ({ at: parseUtc(e.timestamp), kind: text(e.kind), label: text(e.label) }))
    .filter((e) => e.at && e.label)
    .sort((a, b) => a.at - b.at);
  return { points, trades, events, initialCapital: num(body.initial_capital), capital };
}

export function availableAlgorithms(raw) {
  const list = raw && Array.isArray(raw.algorithms) ? raw.algorithms : [];
  return list.map((a) => ({
    name: text(a.name), description: text(a.description),
    parameters: Array.isArray(a.parameters) ? a.parameters.map(toParameter).filter((p) => p.name) : [],
  })).filter((a) => a.name);
}

function toParameter(raw) {
  const p = raw || {};
  return {
    name: text(p.name), type: ['int', 'float', 'choice'].includes(p.type) ? p.type : 'float',
    default: p.default, min: p.min, max: p.max, help: text(p.help),
    choices: Array.isArray(p.choices) ? p.choices : [],
  };
}

// "fast=10 slow=30": a card's parameters in one line ('' for none).
export function parameterText(raw) {
  if (!raw || typeof raw !== 'object') return '';
  return Object.entries(raw).map(([name, value]) => `${name}=${value}`).join(' ');
}

function toDecision(raw) {
  if (!raw) return null;
  return {
    minute: parseUtc(raw.minute), kind: text(raw.kind), action: text(raw.action), shares: num(raw.shares) ?? 0,
    requestedAction: text(raw.requested_action), requestedShares: num(raw.requested_shares),
    reason: text(raw.reason), price: num(raw.price), heldBack: text(raw.held_back),
  };
}

// /api/algorithms/<id>/detail: the card plus FIFO lots, fills and its last decisions.
export function toDetail(raw) {
  const body = raw || {};
  return {
    ...toCard(body),
    parameters: parameterText(body.parameters),
    realizedPnl: num(body.realized_pnl),
    unrealizedPnl: num(body.unrealized_pnl),
    lots: (body.lots || []).map((l) => ({
      shares: num(l.shares), entryPrice: num(l.entry_price), openedAt: parseUtc(l.opened),
      unrealizedPnl: num(l.unrealized_pnl),
    })),
    transactions: (body.transactions || []).map((t) => ({
      at: parseUtc(t.timestamp), type: text(t.type), shares: num(t.shares), price: num(t.price), value: num(t.value),
    })),
    // The owner's deposits and withdrawals, newest first: rows of the card's history of their own.
    capitalMoves: (Array.isArray(body.capital_moves) ? body.capital_moves : []).map((m) => ({
      at: parseUtc(m.timestamp), kind: text(m.kind), amount: num(m.amount),
    })).filter((m) => m.at && (m.kind === 'deposit' || m.kind === 'withdrawal')),
    lastDecision: toDecision(body.last_decision),
    lastRefusal: toDecision(body.last_refusal),
    lastError: toDecision(body.last_error),
    frozen: text(body.frozen),
    stale: text(body.stale),
    events: Array.isArray(body.corporate_actions) ? body.corporate_actions.map((e) => ({
      at: parseUtc(e.effective_at), text: text(e.description || e.kind),
    })) : [],
  };
}

// /api/algorithms/<id>/chart: bars (or merged buckets), indicator series and fills, oldest first.
export function toChart(raw) {
  const body = raw || {};
  const points = (body.points || []).map((p) => ({
    at: parseUtc(p.timestamp), open: num(p.open), high: num(p.high), low: num(p.low), close: num(p.close),
  }));
  const indicators = Object.entries(body.indicators || {}).map(([name, values]) => ({
    name: text(name), values: (Array.isArray(values) ? values : []).map(num),
  }));
  const trades = (body.trades || [])
    .map((t) => ({ at: parseUtc(t.timestamp), type: text(t.type), shares: num(t.shares), price: num(t.price) }))
    .filter((t) => t.at && t.price !== null);
  return { zoom: text(body.zoom), points, indicators, trades, barsPerPoint: num(body.bars_per_point) ?? 1 };
}

function toDay(raw) {
  return raw ? { date: text(raw.date), pnl: num(raw.pnl), cumulative: num(raw.cumulative) } : null;
}

// /api/history: closed cards, daily account P&L and the open/realized split.
export function toHistoryView(raw) {
  const body = raw || {};
  return {
    closed: (body.closed || []).map((c) => ({
      id: c.id, displayName: text(c.display_name), ticker: text(c.ticker), algorithmType: text(c.algorithm_type),
      createdAt: parseUtc(c.created_at), stoppedAt: parseUtc(c.stopped_at), tradeCount: num(c.trade_count) ?? 0,
      realizedPnl: num(c.realized_pnl), state: text(c.state), parameters: parameterText(c.parameters),
    })),
    daily: (body.daily_pnl || []).map(toDay),
    openPnl: num(body.open_pnl),
    realizedPnl: num(body.realized_pnl),
  };
}

export function toPnlSummary(raw) {
  const body = raw || {};
  return { openPnl: num(body.open_pnl), realizedPnl: num(body.realized_pnl), today: toDay(body.today) };
}
