// The add-algorithm form: pick an algorithm, a ticker and the capital; the API has the last word.
import { openModal, closeModal, setMessage } from './modal.js';
import { formatMoney } from './format.js';
import { h, setText } from './dom.js';
import { availableAlgorithms, toCash } from './model.js';
import { createKeyboard } from './osk.js';

export function parseCapital(raw) {
  const cleaned = String(raw).replace(/[\s,$]/g, '');
  if (!/^\d+(\.\d{0,2})?$|^\.\d{1,2}$/.test(cleaned)) return null;
  const value = Number(cleaned);
  return Number.isFinite(value) && value > 0 ? value : null;
}

// The API's refusal in the words of the form; its own message when there is no better one.
export function refusalText(error, fields) {
  const body = error.body || {};
  if (body.field === 'initial_capital' && typeof body.available_cash === 'number') {
    return `The capital ${formatMoney(fields.initial_capital)} is more than the available cash `
      + `${formatMoney(Number(body.available_cash))}.`;
  }
  const text = error.message.replace(/^\w/, (first) => first.toUpperCase());
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

export function createAddDialog({ els, api, onCreated }) {
  let descriptions = new Map();
  let busy = false;
  let session = null; // the PIN flow this dialog was opened with; forgotten when it closes

  createKeyboard(els.keyboard, { inputs: [els.ticker, els.capital] });
  els.ticker.addEventListener('input', () => {
    const upper = els.ticker.value.toUpperCase().replace(/[^A-Z0-9.\-]/g, '');
    if (upper !== els.ticker.value) els.ticker.value = upper;
  });
  els.capital.addEventListener('input', () => {
    const kept = els.capital.value.replace(/[^0-9.,]/g, '');
    if (kept !== els.capital.value) els.capital.value = kept;
  });
  els.algorithm.addEventListener('change', showDescription);
  els.cancel.addEventListener('click', close);
  els.form.addEventListener('submit', (event) => {
    event.preventDefault();
    submit();
  });

  function showDescription() {
    setText(els.description, descriptions.get(els.algorithm.value) || '');
  }

  function close() {
    closeModal(els.dialog);
    if (session) session.forget();
    session = null;
  }

  async function loadChoices() {
    const [algos, cash] = await Promise.allSettled([api.availableAlgorithms(), api.accountCash()]);
    if (algos.status === 'fulfilled') {
      const list = availableAlgorithms(algos.value);
      descriptions = new Map(list.map((a) => [a.name, a.description]));
      els.algorithm.replaceChildren(...list.map((a) => h('option', { text: a.name, attrs: { value: a.name } })));
      showDescription();
      if (list.length === 0) setMessage(els.error, 'No algorithms were found in the algorithms folder.', 'error');
    } else {
      setMessage(els.error, `Could not load the algorithms: ${algos.reason.message}`, 'error');
    }
    if (cash.status === 'fulfilled') {
      const available = toCash(cash.value).available;
      setText(els.available, `Available cash: ${formatMoney(available)}`);
      els.available.dataset.available = String(available ?? '');
    } else {
      setText(els.available, `Available cash unknown: ${cash.reason.message}`);
    }
  }

  // Opens the form for one add: `pinSession` holds the token the PIN pad gave for it.
  async function open(pinSession) {
    session = pinSession;
    els.form.reset();
    els.algorithm.replaceChildren();
    setText(els.description, '');
    setText(els.available, 'Available cash: loading…');
    setMessage(els.error, '');
    els.submit.disabled = false;
    openModal(els.dialog, close);
    await loadChoices();
    els.ticker.focus();
  }

  function readForm() {
    const algorithm = els.algorithm.value;
    const ticker = els.ticker.value.trim().toUpperCase();
    const capital = parseCapital(els.capital.value);
    if (!algorithm) return { problem: 'Choose an algorithm.' };
    if (!ticker) return { problem: 'Enter a ticker symbol, for example NVDA.' };
    if (capital === null) {
      return { problem: 'Enter the capital as a positive dollar amount, for example 1000 or 1000.50.' };
    }
    return { fields: { ticker, algorithm_type: algorithm, initial_capital: capital } };
  }

  async function submit() {
    if (busy) return;
    const { problem, fields } = readForm();
    if (problem) {
      setMessage(els.error, problem, 'error');
      return;
    }
    busy = true;
    els.submit.disabled = true;
    setMessage(els.error, 'Adding…');
    try {
      const created = await session.withToken((token) => api.createAlgorithm(fields, token));
      if (created === undefined) {
        setMessage(els.error, 'Not added: the PIN is needed to add an algorithm.', 'error');
        return;
      }
      close();
      onCreated(created && created.algorithm ? created.algorithm : created);
    } catch (error) {
      setMessage(els.error, `Not added. ${refusalText(error, fields)}`, 'error');
    } finally {
      busy = false;
      els.submit.disabled = false;
    }
  }

  return { open };
}
