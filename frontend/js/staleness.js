// Why the numbers on screen may be out of date: no new bar, or a silent trading engine.
import { formatDayTime, formatDuration } from './format.js';

export const STALE_AFTER_MS = 5 * 60_000;
// Off hours the orchestrator refreshes its heartbeat only every few minutes.
export const CLOSED_HEARTBEAT_STALE_MS = 15 * 60_000;
const BAR_LENGTH_MS = 60_000;

function staleTickers(cards, now, staleAfterMs) {
  const newest = new Map();
  for (const card of cards) {
    if (card.state !== 'running') continue;
    const seen = newest.get(card.ticker);
    if (!newest.has(card.ticker) || (card.priceAt && (!seen || card.priceAt > seen))) {
      newest.set(card.ticker, card.priceAt);
    }
  }
  const reasons = [];
  for (const [ticker, at] of newest) {
    if (!at) reasons.push(`No price data yet for ${ticker}.`);
    else if (now - (at.getTime() + BAR_LENGTH_MS) > staleAfterMs) {
      reasons.push(`No new ${ticker} price since ${formatDayTime(at)}.`);
    }
  }
  return reasons;
}

function heartbeatReason(health, marketOpen) {
  if (!health) return null;
  const age = health.heartbeatAgeSeconds;
  if (!marketOpen) {
    // Closed: only a heartbeat that stopped long ago is news (a fresh install has none yet).
    if (age === null || age * 1000 <= CLOSED_HEARTBEAT_STALE_MS) return null;
  } else if (health.orchestratorAlive) {
    return null;
  }
  if (age === null) return 'The trading engine (orchestrator) has not reported yet.';
  return `The trading engine (orchestrator) has not reported for ${formatDuration(age)}.`;
}

// The feed streams a limited number of symbols (IEX: 30); a refused ticker's cards get no prices.
function symbolLimitReason(health) {
  if (!health || !health.refusedTickers || health.refusedTickers.length === 0) return null;
  const limit = health.symbolLimit === null || health.symbolLimit === undefined ? '' : ` of ${health.symbolLimit}`;
  return `The market-data feed refused ${health.refusedTickers.join(', ')}: symbol limit${limit} reached, `
    + 'so those cards get no prices. Stop the cards of a ticker you no longer need.';
}

// Bars flow only while the market is open, so only then is their absence news; the heartbeat
// is judged by the server's threshold while open and by a looser one while closed.
export function staleReasons({ listing, health, now, staleAfterMs = STALE_AFTER_MS }) {
  if (!listing) return [];
  const reasons = listing.marketOpen ? staleTickers(listing.cards, now, staleAfterMs) : [];
  const heartbeat = heartbeatReason(health, listing.marketOpen);
  if (heartbeat) reasons.push(heartbeat);
  const clock = clockReason(health);
  if (clock) reasons.push(clock);
  const refused = symbolLimitReason(health);
  if (refused) reasons.push(refused);
  return reasons;
}

// The orchestrator places no orders while this computer's clock disagrees with the broker's.
function clockReason(health) {
  if (!health || health.clockSkewSeconds === null || health.clockSkewSeconds === undefined) return null;
  const off = formatDuration(Math.abs(health.clockSkewSeconds));
  const way = health.clockSkewSeconds > 0 ? 'ahead of' : 'behind';
  return `Trading paused: this computer's clock is ${off} ${way} the broker's. It resumes when they agree.`;
}
