// The add-algorithm form: pick an algorithm, a ticker and the capital; the API has the last word.
import { openModal, closeModal, setMessage } from './modal.js';
import { formatMoney } from './format.js';
import { h, setText } from './dom.js';
import { availableAlgorithms, toCash, toLimits, limitsBody } from './model.js';
import { limitsSummary } from './limits.js';
import { createKeyboard } from './osk.js';
import { createPreview } from './preview.js';

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

function bounds(p) {
  return p.type === 'choice' ? '' : `${p.min}–${p.max}`;
}

// One field per declared parameter, pre-filled with its default; bounds beside it, help on focus.
export function parameterFields(parameters) {
  return parameters.map((p) => {
    const control = p.type === 'choice'
      ? h('select', { dataset: { param: p.name, type: p.type } },
        p.choices.map((c) => h('option', { text: String(c), attrs: { value: String(c) } })))
      : h('input', {
        dataset: { param: p.name, type: p.type },
        attrs: { inputmode: 'decimal', autocomplete: 'off', 'aria-label': `${p.name} (${bounds(p)})` },
      });
    control.value = String(p.default);
    return h('label', { className: 'field' }, [
      h('span', { className: 'field-label' }, [
        h('span', { className: 'param-name', text: p.name }),
        p.type === 'choice' ? null : h('span', { className: 'param-bounds', text: bounds(p) }),
      ]),
      control,
    ]);
  });
}

// {values} or {problem}: numbers as numbers (the API checks the bounds and names the one at fault).
export function readParameters(container) {
  const values = {};
  for (const control of container.querySelectorAll('[data-param]')) {
    const { param, type } = control.dataset;
    const raw = control.value.trim();
    if (type === 'choice') {
      values[param] = raw;
    } else if (type === 'int' ? /^-?\d+$/.test(raw) : /^-?(\d+\.?\d*|\.\d+)$/.test(raw)) {
      values[param] = Number(raw);
    } else {
      return { problem: `Enter ${param} as ${type === 'int' ? 'a whole number' : 'a number'}.` };
    }
  }
  return { values };
}

export function createAddDialog({ els, api, onCreated, limitsDialog }) {
  let limits = null; // the new card's limits: the defaults (.env) until LIMITS changes them
  let descriptions = new Map();
  let parameters = new Map();
  let busy = false;
  const preview = createPreview({ els, api });
  let session = null; // the PIN flow this dialog was opened with; forgotten when it closes

  createKeyboard(els.keyboard, { inputs: [els.ticker, els.capital], scope: els.form });
  els.form.addEventListener('focusin', (event) => {
    if (!(event.target instanceof HTMLInputElement)) return;
    els.keyboard.hidden = false;
    showDescription(event.target.dataset.param);
  });
  els.previewButton.addEventListener('click', () => {
    const { problem, fields } = readForm();
    if (problem) {
      setMessage(els.error, problem, 'error');
      return;
    }
    setMessage(els.error, '');
    const { limits: _ignored, ...backtested } = fields; // the preview replays the algorithm alone
    preview.run(backtested);
  });
  els.ticker.addEventListener('input', () => {
    const upper = els.ticker.value.toUpperCase().replace(/[^A-Z0-9.\-]/g, '');
    if (upper !== els.ticker.value) els.ticker.value = upper;
  });
  els.capital.addEventListener('input', () => {
    const kept = els.capital.value.replace(/[^0-9.,]/g, '');
    if (kept !== els.capital.value) els.capital.value = kept;
  });
  els.algorithm.addEventListener('change', chooseAlgorithm);
  els.limitsButton.addEventListener('click', async () => {
    const chosen = await limitsDialog.edit(limits, { title: 'Limits of the new card', onSave: async (l) => l });
    if (chosen) showLimits(chosen);
  });
  els.cancel.addEventListener('click', close);
  els.form.addEventListener('submit', (event) => {
    event.preventDefault();
    submit();
  });

  // The algorithm's description; while a parameter is being typed, that parameter's help.
  function showDescription(param) {
    const spec = (parameters.get(els.algorithm.value) || []).find((p) => p.name === param);
    setText(els.description, spec ? `${spec.name}: ${spec.help}` : descriptions.get(els.algorithm.value) || '');
  }

  function chooseAlgorithm() {
    showDescription();
    els.params.replaceChildren(...parameterFields(parameters.get(els.algorithm.value) || []));
    preview.clear();
  }

  function close() {
    closeModal(els.dialog);
    if (session) session.forget();
    session = null;
  }

  function showLimits(chosen) {
    limits = chosen;
    setText(els.limits, `Limits: ${limitsSummary(limits)}`);
  }

  async function loadChoices() {
    const [algos, cash, controls] = await Promise.allSettled([api.availableAlgorithms(), api.accountCash(),
      api.controls()]);
    if (controls.status === 'fulfilled') showLimits(toLimits(controls.value.card_limit_defaults));
    else setText(els.limits, 'Limits: the defaults');
    if (algos.status === 'fulfilled') {
      const list = availableAlgorithms(algos.value);
      descriptions = new Map(list.map((a) => [a.name, a.description]));
      parameters = new Map(list.map((a) => [a.name, a.parameters]));
      els.algorithm.replaceChildren(...list.map((a) => h('option', { text: a.name, attrs: { value: a.name } })));
      chooseAlgorithm();
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
    els.params.replaceChildren();
    preview.clear();
    els.keyboard.hidden = false;
    setText(els.description, '');
    setText(els.available, 'Available cash: loading…');
    limits = null;
    setText(els.limits, '');
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
    const { problem, values } = readParameters(els.params);
    if (problem) return { problem };
    const fields = { ticker, algorithm_type: algorithm, initial_capital: capital, parameters: values };
    if (limits) fields.limits = limitsBody(limits); // else the server's defaults
    return { fields };
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
