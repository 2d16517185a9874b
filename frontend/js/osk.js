// A small on-screen keyboard for the forms: the wall display has a touch screen and no keys.

const ROWS = ['1234567890', 'QWERTYUIOP', 'ASDFGHJKL.', 'ZXCVBNM-'];
export const NUMBER_ROWS = ['123', '456', '789', '.0']; // a keypad for amounts
const BACKSPACE = 'Backspace';

// `scope` (optional): inputs added to it later (the parameters) are typed into once focused.
// `rows`: the keys, one string per row (BACK ends the last row).
export function createKeyboard(container, { inputs, scope = null, rows = ROWS }) {
  let target = inputs[0];
  for (const input of inputs) input.addEventListener('focus', () => { target = input; });
  if (scope) {
    scope.addEventListener('focusin', (event) => {
      if (event.target instanceof HTMLInputElement) target = event.target;
    });
  }

  for (const row of rows) {
    const line = document.createElement('div');
    line.className = 'osk-row';
    const keys = [...row];
    if (row === rows[rows.length - 1]) keys.push(BACKSPACE);
    for (const key of keys) {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'osk-key';
      button.textContent = key === BACKSPACE ? 'BACK' : key;
      button.dataset.key = key;
      if (key === BACKSPACE) {
        button.classList.add('osk-key--wide');
        button.setAttribute('aria-label', 'Delete last character');
      }
      line.append(button);
    }
    container.append(line);
  }

  // pointerdown would move focus to the key; keep it in the field being typed into.
  container.addEventListener('pointerdown', (event) => event.preventDefault());
  container.addEventListener('click', (event) => {
    const button = event.target.closest('button');
    if (!button) return;
    const key = button.dataset.key;
    target.value = key === BACKSPACE ? target.value.slice(0, -1) : target.value + key;
    target.dispatchEvent(new Event('input', { bubbles: true }));
    target.focus();
  });
}
