// Horizontal scrolling of the card row by mouse wheel and keyboard (touch swipes scroll natively).
import { SELECTORS as S } from './selectors.js';

const LINE_PX = 16;

function cardStep(container) {
  const card = container.querySelector(S.card);
  if (!card) return container.clientWidth * 0.8;
  const gap = parseFloat(getComputedStyle(container).columnGap) || 0;
  return card.getBoundingClientRect().width + gap;
}

export function enableRowScrolling(container) {
  container.addEventListener('wheel', (event) => {
    if (event.ctrlKey) return;
    const delta = Math.abs(event.deltaY) > Math.abs(event.deltaX) ? event.deltaY : event.deltaX;
    if (delta === 0) return;
    const unit = event.deltaMode === 1 ? LINE_PX : event.deltaMode === 2 ? container.clientWidth : 1;
    container.scrollBy({ left: delta * unit });
    event.preventDefault();
  }, { passive: false });

  document.addEventListener('keydown', (event) => {
    if (document.querySelector(S.openDialog) || event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.target instanceof HTMLInputElement || event.target instanceof HTMLSelectElement) return;
    const step = cardStep(container);
    const moves = {
      ArrowRight: step, ArrowLeft: -step, PageDown: container.clientWidth, PageUp: -container.clientWidth,
      Home: -container.scrollWidth, End: container.scrollWidth,
    };
    if (!(event.key in moves)) return;
    container.scrollBy({ left: moves[event.key], behavior: 'smooth' });
    event.preventDefault();
  });
}
