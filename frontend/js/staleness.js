// Why the numbers on screen may be out of date: no new bar, or a silent trading engine.
import { formatDayTime, formatDuration } from './format.js';

export const STALE_AFTER_MS = 5 * 60_000;
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

function heartbeatReason(health) {
  if (!health || health.orchestratorAlive) return null;
  const age = health.heartbeatAgeSeconds;
  if (age === null) return 'The trading engine (orchestrator) has not reported yet.';
  return `The trading engine (orchestrator) has not reported for ${formatDuration(age)}.`;
}

// Bars and heartbeats only flow while the market is open, so only then is their absence news.
export function staleReasons({ listing, health, now, staleAfterMs = STALE_AFTER_MS }) {
  if (!listing || !listing.marketOpen) return [];
  const reasons = staleTickers(listing.cards, now, staleAfterMs);
  const heartbeat = heartbeatReason(health);
  if (heartbeat) reasons.push(heartbeat);
  return reasons;
}
