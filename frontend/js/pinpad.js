// The PIN pad: large keys, masked digits, clear/back; asks the API and hands back a token.
import { openModal, closeModal, setMessage } from './modal.js';
import { formatDuration } from './format.js';

const MIN_DIGITS = 4;
const MAX_DIGITS = 8;

function wrongPinText(body) {
  const left = body && Number(body.attempts_left);
  if (!Number.isInteger(left) || left <= 0) return 'Wrong PIN. Try again.';
  return `Wrong PIN. ${left} attempt${left === 1 ? '' : 's'} left before a lock-out.`;
}

export function createPinPad({ dialog, title, form, display, message, keys, api, now = () => Date.now() }) {
  let digits = '';
  let settle = null;
  let lockedUntil = 0;
  let lockTimer = null;
  let busy = false;
  let action = null;

  function showDigits() {
    display.textContent = '●'.repeat(digits.length);
    display.dataset.length = String(digits.length);
  }

  function setKeysEnabled(enabled) {
    for (const key of keys.querySelectorAll('button')) {
      if (key.dataset.action !== 'cancel') key.disabled = !enabled;
    }
  }

  function tickLock() {
    const remaining = (lockedUntil - now()) / 1000;
    if (remaining <= 0) {
      clearInterval(lockTimer);
      lockTimer = null;
      setKeysEnabled(true);
      setMessage(message, 'You can try again now.');
      return;
    }
    setMessage(message, `Too many wrong PINs. Locked: try again in ${formatDuration(remaining)}.`, 'error');
  }

  function lockFor(seconds) {
    lockedUntil = now() + seconds * 1000;
    setKeysEnabled(false);
    clearInterval(lockTimer);
    lockTimer = setInterval(tickLock, 1000);
    tickLock();
  }

  function finish(result) {
    closeModal(dialog);
    const done = settle;
    settle = null;
    digits = '';
    showDigits();
    if (done) done(result);
  }

  async function submit() {
    if (busy || now() < lockedUntil) return;
    if (digits.length < MIN_DIGITS) {
      setMessage(message, `The PIN has at least ${MIN_DIGITS} digits.`, 'error');
      return;
    }
    busy = true;
    setMessage(message, 'Checking…');
    try {
      const answer = await api.validatePin(digits, action);
      finish({ token: answer.token, expiresIn: Number(answer.expires_in) || 0 });
    } catch (error) {
      digits = '';
      showDigits();
      if (error.status === 429 || (error.status === 401 && error.retryAfterSeconds)) {
        lockFor(error.retryAfterSeconds || 60);
      } else if (error.status === 401) {
        setMessage(message, wrongPinText(error.body), 'error');
      } else {
        setMessage(message, error.message, 'error');
      }
    } finally {
      busy = false;
    }
  }

  function press(key) {
    if (now() < lockedUntil && key !== 'cancel') return;
    if (key === 'cancel') finish(null);
    else if (key === 'clear') digits = '';
    else if (key === 'back') digits = digits.slice(0, -1);
    else if (key === 'ok') submit();
    else if (/^[0-9]$/.test(key) && digits.length < MAX_DIGITS) digits += key;
    showDigits();
  }

  keys.addEventListener('click', (event) => {
    const button = event.target.closest('button');
    if (!button || button.disabled) return;
    event.preventDefault();
    press(button.dataset.digit ?? button.dataset.action);
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    press('ok');
  });
  dialog.addEventListener('keydown', (event) => {
    if (/^[0-9]$/.test(event.key)) press(event.key);
    else if (event.key === 'Backspace') press('back');
    else if (event.key === 'Delete') press('clear');
    else if (event.key === 'Enter') press('ok');
    else return;
    event.preventDefault();
  });

  // Resolves with {token, expiresIn} for `forAction` ('add', 'stop', 'deposit', 'withdraw'), or null when
  // the person cancels.
  function request(prompt, forAction) {
    if (settle) return Promise.resolve(null);
    action = forAction;
    digits = '';
    showDigits();
    title.textContent = prompt;
    if (now() < lockedUntil) tickLock();
    else setMessage(message, '');
    openModal(dialog, () => finish(null));
    return new Promise((resolve) => {
      settle = resolve;
    });
  }

  return { request };
}
