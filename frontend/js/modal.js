// Opening and closing the page's <dialog> boxes; Escape (or the kiosk's back gesture) cancels.

export function openModal(dialog, onCancel) {
  dialog.oncancel = (event) => {
    event.preventDefault();
    onCancel();
  };
  if (!dialog.open) dialog.showModal();
}

export function closeModal(dialog) {
  dialog.oncancel = null;
  if (dialog.open) dialog.close();
}

export function setMessage(node, text, kind = '') {
  node.textContent = text || '';
  node.classList.toggle('error', kind === 'error');
  node.classList.toggle('warning', kind === 'warning');
}
