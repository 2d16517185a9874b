// Every element the scripts look up, in one place (the tests use the same names).
export const SELECTORS = Object.freeze({
  statusBar: '#status-bar',
  market: '#status-market',
  session: '#status-session',
  cash: '#status-cash',
  totalPnl: '#status-pnl',
  pnlSplit: '#status-pnl-split',
  historyButton: '#history-button',
  updated: '#status-updated',
  addButton: '#add-button',
  banner: '#banner',
  cards: '#cards',
  card: '.card',
  chartEvent: '.chart-event',
  empty: '#empty',
  openDialog: 'dialog[open]',

  pinDialog: '#pin-dialog',
  pinTitle: '#pin-title',
  pinForm: '#pin-form',
  pinDisplay: '#pin-display',
  pinMessage: '#pin-message',
  pinKeys: '#pin-keys',

  addDialog: '#add-dialog',
  addForm: '#add-form',
  addAlgorithm: '#add-algorithm',
  addDescription: '#add-description',
  addTicker: '#add-ticker',
  addCapital: '#add-capital',
  addAvailable: '#add-available',
  addKeyboard: '#add-keyboard',
  addError: '#add-error',
  addParams: '#add-params',
  addPreview: '#add-preview',
  addPreviewStatus: '#add-preview-status',
  addPreviewChart: '#add-preview-chart',
  addPreviewFigures: '#add-preview-figures',
  addPreviewButton: '#add-preview-button',
  addCancel: '#add-cancel',
  addSubmit: '#add-submit',

  stopDialog: '#stop-dialog',
  stopName: '#stop-name',
  stopText: '#stop-text',
  stopError: '#stop-error',
  stopCancel: '#stop-cancel',
  stopConfirm: '#stop-confirm',

  detail: '#detail',
  detailBack: '#detail-back',
  detailTitle: '#detail-title',
  detailZoom: '#detail-zoom',
  detailChart: '#detail-chart',
  detailLegend: '#detail-legend',
  detailPanels: '#detail-panels',
  detailAlerts: '#detail-alerts',
  detailSummary: '#detail-summary',
  detailDecisions: '#detail-decisions',
  detailLots: '#detail-lots tbody',
  detailTransactions: '#detail-transactions tbody',
  detailEvents: '#detail-events',
  detailEventsList: '#detail-events-list',

  history: '#history',
  historyBack: '#history-back',
  historyTotals: '#history-totals',
  historyDaily: '#history-daily',
  historyClosed: '#history-closed tbody',
  historyEmpty: '#history-empty',

  quiet: '#quiet',
  quietMarket: '#quiet-market',
  quietOpen: '#quiet-open',
  quietPnl: '#quiet-pnl',
});

// Pick one element or fail loudly: a missing element is a bug in index.html, not a runtime state.
export function $(selector, root = document) {
  const found = root.querySelector(selector);
  if (!found) throw new Error(`dashboard element ${selector} is missing`);
  return found;
}
