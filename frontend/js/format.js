// Numbers and times as the viewer reads them: dollars, signed P&L, and the viewer's local time.

const money = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' });
const plainNumber = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

export function parseUtc(value) {
  if (value === null || value === undefined || value === '') return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

export function formatMoney(amount) {
  return Number.isFinite(amount) ? money.format(amount) : '—';
}

export function formatSignedMoney(amount) {
  if (!Number.isFinite(amount)) return '—';
  if (amount === 0) return money.format(0);
  return (amount > 0 ? '+' : '−') + money.format(Math.abs(amount));
}

export function formatPercent(ratio) {
  if (!Number.isFinite(ratio)) return '—';
  const percent = ratio * 100;
  const text = Math.abs(percent).toFixed(2) + '%';
  if (text === '0.00%') return text;
  return (percent > 0 ? '+' : '−') + text;
}

export function formatCount(value) {
  return Number.isFinite(value) ? plainNumber.format(value) : '—';
}

// "3:05:09 PM" in the viewer's zone (the browser's default locale and time zone).
export function formatClock(date) {
  return date ? date.toLocaleTimeString(undefined, { hour: 'numeric', minute: '2-digit', second: '2-digit' }) : '—';
}

// Which day "today" is: the market's (the trading clock the API reports), so a card's times read
// the same whatever the browser's own clock says; main.js hands it over once the page has one.
let marketToday = () => new Date();

export function useMarketClock(now) {
  marketToday = () => new Date(now());
}

// "Tue 9:30 AM", or just "9:30 AM" when it is the market's today in the viewer's zone.
export function formatDayTime(date, today = marketToday()) {
  if (!date) return '—';
  const time = date.toLocaleTimeString(undefined, { hour: 'numeric', minute: '2-digit' });
  if (date.toDateString() === today.toDateString()) return time;
  return `${date.toLocaleDateString(undefined, { weekday: 'short' })} ${time}`;
}

// "Nov 23, 9:30 AM": for a card's creation time.
export function formatDate(date) {
  if (!date) return '—';
  return date.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit' });
}

export function formatDuration(seconds) {
  const total = Math.max(0, Math.ceil(seconds));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const rest = total % 60;
  if (hours > 0) return minutes ? `${hours} h ${minutes} min` : `${hours} h`;
  if (minutes === 0) return `${rest} s`;
  return rest ? `${minutes} min ${rest} s` : `${minutes} min`;
}
