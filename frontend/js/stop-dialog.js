// Asks "stop this card?" naming it and saying what will be sold, then stops it or shows why not.
import { openModal, closeModal, setMessage } from './modal.js';
import { formatCount } from './format.js';
import { setText } from './dom.js';

export function stopWarning(card) {
  if (card.shares > 0) {
    const shares = `${formatCount(card.shares)} share${card.shares === 1 ? '' : 's'}`;
    return `It stops trading now, and its ${shares} of ${card.ticker} will be sold at the market price.`;
  }
  return `It stops trading now. It holds no ${card.ticker} shares, so nothing needs to be sold.`;
}

export function createStopDialog({ els }) {
  let settle = null;

  function finish(answer) {
    closeModal(els.dialog);
    const done = settle;
    settle = null;
    if (done) done(answer);
  }

  let stopAction = null;
  let busy = false;

  async function stop() {
    if (busy) return;
    busy = true;
    els.confirm.disabled = true;
    setMessage(els.error, 'Stopping…');
    try {
      const answer = await stopAction();
      if (answer === undefined) setMessage(els.error, 'Not stopped: the PIN is needed to stop it.', 'error');
      else finish(true);
    } catch (error) {
      if (error.status === 404) finish(true);
      else setMessage(els.error, `Not stopped: ${error.message}`, 'error');
    } finally {
      busy = false;
      els.confirm.disabled = false;
    }
  }

  els.cancel.addEventListener('click', () => finish(false));
  els.confirm.addEventListener('click', stop);

  // Resolves true once action() succeeded (the card is stopped), false if the person backs out.
  function confirm(card, action) {
    if (settle) return Promise.resolve(false);
    stopAction = action;
    setText(els.name, card.displayName);
    setText(els.text, stopWarning(card));
    setMessage(els.error, '');
    openModal(els.dialog, () => finish(false));
    els.cancel.focus();
    return new Promise((resolve) => {
      settle = resolve;
    });
  }

  return { confirm };
}
