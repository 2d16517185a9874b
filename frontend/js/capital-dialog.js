// DEPOSIT / WITHDRAW on a card's detail view: the amount on an on-screen keypad, the limit beside
// it (the account's available cash, or the card's uninvested cash), the API's refusal in words.
import { openModal, closeModal, setMessage } from './modal.js';
import { formatMoney } from './format.js';
import { setText } from './dom.js';
import { toCash } from './model.js';
import { createKeyboard, NUMBER_ROWS } from './osk.js';
import { parseCapital } from './add-dialog.js';

const WORDS = {
  deposit: { title: 'Deposit into', button: 'DEPOSIT', verb: 'deposited', busy: 'Depositing…' },
  withdraw: { title: 'Withdraw from', button: 'WITHDRAW', verb: 'withdrawn', busy: 'Withdrawing…' },
};

function sentence(text) {
  const first = text.replace(/^\w/, (c) => c.toUpperCase());
  return /[.!?]$/.test(first) ? first : `${first}.`;
}

export function createCapitalDialog({ els, api, onDone }) {
  let state = null; // {card, kind, session} while the dialog is open
  let busy = false;

  createKeyboard(els.keyboard, { inputs: [els.amount], rows: NUMBER_ROWS });
  els.amount.addEventListener('input', () => {
    const kept = els.amount.value.replace(/[^0-9.,]/g, '');
    if (kept !== els.amount.value) els.amount.value = kept;
  });
  els.cancel.addEventListener('click', close);
  els.form.addEventListener('submit', (event) => {
    event.preventDefault();
    submit();
  });

  function close() {
    closeModal(els.dialog);
    if (state) state.session.forget(); // the next move asks for the PIN again
    state = null;
  }

  async function showLimit(card, kind) {
    if (kind === 'withdraw') {
      setText(els.limit, `Uninvested cash: ${formatMoney(card.uninvestedCash)} (a withdrawal never sells shares)`);
      return;
    }
    setText(els.limit, 'Available cash: loading…');
    try {
      const available = toCash(await api.accountCash()).available;
      if (state && state.card === card) setText(els.limit, `Available cash: ${formatMoney(available)}`);
    } catch (error) {
      if (state && state.card === card) setText(els.limit, `Available cash unknown: ${error.message}`);
    }
  }

  // Opens for one move of `kind` ('deposit' or 'withdraw') on `card` (the detail view's), with the
  // PIN session that move was authorised by.
  function open(card, kind, session) {
    state = { card, kind, session };
    const words = WORDS[kind];
    els.form.reset();
    els.dialog.dataset.kind = kind;
    setText(els.title, `${words.title} ${card.ticker} #${card.id}`);
    setText(els.name, card.displayName);
    setText(els.submit, words.button);
    setMessage(els.error, '');
    els.submit.disabled = false;
    openModal(els.dialog, close);
    els.amount.focus();
    return showLimit(card, kind);
  }

  async function submit() {
    if (busy || !state) return;
    const amount = parseCapital(els.amount.value);
    if (amount === null) {
      setMessage(els.error, 'Enter the amount in dollars, for example 500 or 500.25.', 'error');
      return;
    }
    const { card, kind, session } = state;
    busy = true;
    els.submit.disabled = true;
    setMessage(els.error, WORDS[kind].busy);
    try {
      const answer = await session.withToken((token) => api.moveCapital(card.id, kind, amount, token));
      if (answer === undefined) {
        setMessage(els.error, `Nothing ${WORDS[kind].verb}: the PIN is needed.`, 'error');
        return;
      }
      close();
      onDone(answer);
    } catch (error) {
      setMessage(els.error, `Nothing ${WORDS[kind].verb}. ${sentence(error.message)}`, 'error');
    } finally {
      busy = false;
      els.submit.disabled = false;
    }
  }

  return { open, isOpen: () => state !== null };
}
