// When to ask the API again: every 30 s while the market is open, hourly while it is closed,
// sooner when the next open is near, and quickly again after a failed attempt.

export const DEFAULT_INTERVALS = Object.freeze({ openMs: 30_000, closedMs: 60 * 60_000 });
const OPEN_MARGIN_MS = 5_000;
const MIN_TEST_INTERVAL_MS = 100;

// Test/ops override: ?poll_open_ms=500&poll_closed_ms=2000 (harmless in production: it only
// changes how often this page polls).
export function intervalsFromQuery(search, defaults = DEFAULT_INTERVALS) {
  const params = new URLSearchParams(search);
  const read = (name, fallback) => {
    const value = Number(params.get(name));
    return Number.isInteger(value) && value >= MIN_TEST_INTERVAL_MS ? value : fallback;
  };
  return { openMs: read('poll_open_ms', defaults.openMs), closedMs: read('poll_closed_ms', defaults.closedMs) };
}

// outcome: { ok, marketOpen, msUntilOpen } from the last poll.
export function nextDelay(outcome, intervals) {
  if (!outcome || !outcome.ok) return intervals.openMs;
  if (outcome.marketOpen) return intervals.openMs;
  const untilOpen = outcome.msUntilOpen;
  if (Number.isFinite(untilOpen)) {
    const wakeAtOpen = Math.max(untilOpen + OPEN_MARGIN_MS, intervals.openMs);
    return Math.min(intervals.closedMs, wakeAtOpen);
  }
  return intervals.closedMs;
}

// Runs tick() now and then again after delayAfter(outcome) ms; refreshNow() cuts a wait short.
export function createPoller({ tick, delayAfter, onScheduled = () => {} }) {
  let timer = null;
  let running = false;
  let again = false;
  let stopped = false;

  async function run() {
    clearTimeout(timer);
    timer = null;
    if (running) {
      again = true;
      return;
    }
    running = true;
    let outcome;
    try {
      outcome = await tick();
    } catch (error) {
      outcome = { ok: false, error };
    }
    running = false;
    if (stopped) return;
    if (again) {
      again = false;
      run();
      return;
    }
    const delay = delayAfter(outcome);
    onScheduled(delay, outcome);
    timer = setTimeout(run, delay);
  }

  return {
    start: run,
    refreshNow: run,
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
