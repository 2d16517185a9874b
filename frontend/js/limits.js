// A card's limits in words, and the dialog that edits them: when adding a card (the add dialog's
// PIN covers it), or later from the card's detail view (with its own PIN). The API checks the values.
import { openModal, closeModal, setMessage } from './modal.js';
import { formatMoney, formatDayTime } from './format.js';
import { createKeyboard, NUMBER_ROWS } from './osk.js';
import { LIMIT_NAMES } from './model.js';

export function limitsSummary(limits) {
  const l = limits || {};
  const parts = [];
  if (l.maxDrawdownPercent != null) parts.push(`max loss ${l.maxDrawdownPercent}% from peak`);
  if (l.dailyLossLimit != null) parts.push(`day loss ${formatMoney(l.dailyLossLimit)}`);
  if (l.maxTradesPerDay != null) parts.push(`${l.maxTradesPerDay} trades/day`);
  if (l.cooldownMinutes != null) parts.push(`${l.cooldownMinutes} min cooldown`);
  if (!parts.length) return 'none';
  return `${parts.join(' · ')} → ${l.onTrip === 'liquidate' ? 'stop and sell' : 'pause'}`;
}

// The line on a tripped card: which limit and when (a cooldown: until when).
export function tripText(trip) {
  if (!trip) return '';
  if (trip.until) return `COOLDOWN until ${formatDayTime(trip.until)}: losing sale`;
  return `LIMIT: ${LIMIT_NAMES[trip.limit] || trip.limit} · ${formatDayTime(trip.at)}`;
}

function fieldValue(input, integer) {
  const raw = input.value.trim();
  if (raw === '') return { value: null };
  const ok = integer ? /^\d+$/.test(raw) : /^(\d+\.?\d*|\.\d+)$/.test(raw);
  const value = Number(raw);
  if (!ok || !(value > 0)) return { problem: `${input.dataset.label}: ${integer ? 'a whole number' : 'a number'} above 0, or empty for none.` };
  return { value };
}

export function createLimitsDialog({ els }) {
  const fields = [
    [els.drawdown, 'maxDrawdownPercent', false], [els.dailyLoss, 'dailyLossLimit', false],
    [els.trades, 'maxTradesPerDay', true], [els.cooldown, 'cooldownMinutes', true],
  ];
  let settle = null;
  let saveAction = null;
  let busy = false;

  createKeyboard(els.keyboard, { inputs: fields.map(([input]) => input), rows: NUMBER_ROWS });
  for (const [input] of fields) {
    input.addEventListener('input', () => {
      const kept = input.value.replace(/[^0-9.]/g, '');
      if (kept !== input.value) input.value = kept;
    });
  }

  function finish(result) {
    closeModal(els.dialog);
    const done = settle;
    settle = null;
    if (done) done(result);
  }

  function read() {
    const limits = { onTrip: els.onTrip.value === 'liquidate' ? 'liquidate' : 'pause' };
    for (const [input, key, integer] of fields) {
      const { value, problem } = fieldValue(input, integer);
      if (problem) return { problem };
      limits[key] = value;
    }
    return { limits };
  }

  async function save() {
    if (busy) return;
    const { problem, limits } = read();
    if (problem) {
      setMessage(els.error, problem, 'error');
      return;
    }
    busy = true;
    els.save.disabled = true;
    setMessage(els.error, 'Saving…');
    try {
      const saved = await saveAction(limits);
      if (saved === undefined) setMessage(els.error, 'Not saved: the PIN is needed to change limits.', 'error');
      else finish(saved);
    } catch (error) {
      setMessage(els.error, `Not saved: ${error.message}`, 'error');
    } finally {
      busy = false;
      els.save.disabled = false;
    }
  }

  els.cancel.addEventListener('click', () => finish(null));
  els.form.addEventListener('submit', (event) => {
    event.preventDefault();
    save();
  });

  // Resolves with what save(limits) returned, or null when the person backs out.
  function edit(limits, { title, onSave }) {
    if (settle) return Promise.resolve(null);
    saveAction = onSave;
    els.title.textContent = title;
    const l = limits || {};
    for (const [input, key] of fields) input.value = l[key] == null ? '' : String(l[key]);
    els.onTrip.value = l.onTrip === 'liquidate' ? 'liquidate' : 'pause';
    setMessage(els.error, '');
    openModal(els.dialog, () => finish(null));
    els.drawdown.focus();
    return new Promise((resolve) => {
      settle = resolve;
    });
  }

  return { edit };
}
