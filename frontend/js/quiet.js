// Off hours, the wall goes quiet: after the close and a few idle minutes it dims to the next open
// and the day's P&L, and wakes on a touch, a key, or (unless turned off) at the open.
// Settings from the page's query: ?dim_after_ms=300000 (0 never dims) & wake_at_open=0|1.
import { setText } from './dom.js';
import { formatDayTime, formatSignedMoney } from './format.js';

export const DEFAULT_QUIET = Object.freeze({ dimAfterMs: 5 * 60_000, wakeAtOpen: true });
const CHECK_MS = 1_000;

export function quietFromQuery(search, defaults = DEFAULT_QUIET) {
  const params = new URLSearchParams(search);
  const ms = Number(params.get('dim_after_ms'));
  const wake = params.get('wake_at_open');
  return {
    dimAfterMs: params.has('dim_after_ms') && Number.isInteger(ms) && ms >= 0 ? ms : defaults.dimAfterMs,
    wakeAtOpen: wake === null ? defaults.wakeAtOpen : !['0', 'false', 'no', 'off'].includes(wake.toLowerCase()),
  };
}

// "Tue Dec 1" for the session date "2026-12-01" (a calendar date: no time zone shift).
export function sessionLabel(date) {
  const [y, m, d] = date.split('-').map(Number);
  return new Date(y, m - 1, d).toLocaleDateString(undefined, { weekday: 'short', month: 'short', day: 'numeric' });
}

// Dim when the market is closed and nobody has touched the wall for dimAfterMs.
export function shouldDim({ marketOpen, idleMs, dimAfterMs }) {
  return marketOpen === false && dimAfterMs > 0 && idleMs >= dimAfterMs;
}

export function createQuiet({ els, settings, now = () => Date.now() }) {
  let lastActivity = now();
  let market = { marketOpen: null, nextOpen: null };
  let wasOpen = null;
  let dimmed = false;
  let swallowClicksUntil = 0;

  function show(on) {
    dimmed = on;
    els.root.hidden = !on;
    document.body.dataset.quiet = String(on);
  }

  function wake(event) {
    lastActivity = now();
    if (!dimmed) return;
    show(false);
    swallowClicksUntil = now() + 700;
    if (event) {
      event.preventDefault(); // the waking touch lands on the quiet screen, never on a card below
      event.stopPropagation();
    }
  }

  function check() {
    if (!dimmed && shouldDim({ marketOpen: market.marketOpen, idleMs: now() - lastActivity, dimAfterMs: settings.dimAfterMs })) {
      show(true);
    }
  }

  // After each poll: the market state, the next open and the day's P&L.
  function update({ marketOpen, nextOpen, today }) {
    market = { marketOpen, nextOpen };
    if (marketOpen && wasOpen === false) {
      lastActivity = now();
      if (dimmed && settings.wakeAtOpen) show(false);
    }
    wasOpen = marketOpen;
    setText(els.market, marketOpen ? 'MARKET OPEN' : 'MARKET CLOSED');
    setText(els.open, nextOpen ? `opens ${formatDayTime(nextOpen)}` : '');
    setText(els.pnl, today && Number.isFinite(today.pnl) ? `P&L ${sessionLabel(today.date)}: ${formatSignedMoney(today.pnl)}` : '');
    els.pnl.dataset.sign = today && today.pnl > 0 ? 'up' : today && today.pnl < 0 ? 'down' : 'flat';
    check();
  }

  for (const type of ['pointerdown', 'keydown', 'wheel', 'touchstart']) {
    document.addEventListener(type, (event) => wake(dimmed ? event : null), { capture: true, passive: false });
  }
  document.addEventListener('click', (event) => {
    if (now() < swallowClicksUntil) {
      event.preventDefault();
      event.stopPropagation();
    }
  }, { capture: true });
  setInterval(check, CHECK_MS);
  show(false);
  return { update, isDimmed: () => dimmed };
}
