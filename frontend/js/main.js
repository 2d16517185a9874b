// Wires the dashboard together: polling loop, rendering, and the add/stop/deposit/withdraw/pause/limits flows.
import { SELECTORS as S, $ } from './selectors.js';
import { createApi } from './api.js';
import { toListing, toCash, toHealth, toHistory, toCard, toPnlSummary, toPause, limitsBody } from './model.js';
import { intervalsFromQuery, nextDelay, createPoller } from './polling.js';
import { staleReasons } from './staleness.js';
import { createCardsView } from './cards.js';
import { renderStatus, renderBanner, renderPause, brokerMessages } from './header.js';
import { createLimitsDialog } from './limits.js';
import { enableRowScrolling } from './scroller.js';
import { createPinPad } from './pinpad.js';
import { createAuth } from './auth.js';
import { createAddDialog } from './add-dialog.js';
import { createStopDialog } from './stop-dialog.js';
import { createCapitalDialog } from './capital-dialog.js';
import { formatClock, useMarketClock } from './format.js';
import { createDetailView } from './detail-view.js';
import { createHistoryView } from './history-view.js';
import { createQuiet, quietFromQuery } from './quiet.js';

const api = createApi();
const intervals = intervalsFromQuery(window.location.search);
const view = {
  listing: null, cash: null, cashError: null, health: null, lastUpdate: null, pnlSummary: null,
  failure: null, failingSince: null, closing: new Set(), historyKeys: new Map(), controlError: null,
  changes: 0, // bumped by every add/stop, so a listing fetched before one is not shown after it
};

const header = {
  market: $(S.market), session: $(S.session), cash: $(S.cash), totalPnl: $(S.totalPnl), updated: $(S.updated),
  pnlSplit: $(S.pnlSplit),
};
const banner = $(S.banner);
const pauseButton = $(S.pauseButton);
const pauseBanner = $(S.pauseBanner);
const brokerBanner = $(S.brokerBanner);
const cardsView = createCardsView({
  container: $(S.cards), empty: $(S.empty), onStop: stopCard, onOpen: (id) => detailView.open(id),
});
const detailView = createDetailView({
  api, onClose: () => $(S.cards).focus(), onMoveCapital: moveCapital, onResumeCard: resumeCard,
  onChangeLimits: changeLimits,
  els: {
    root: $(S.detail), back: $(S.detailBack), title: $(S.detailTitle), zoom: $(S.detailZoom), chart: $(S.detailChart),
    legend: $(S.detailLegend), panels: $(S.detailPanels), alerts: $(S.detailAlerts), summary: $(S.detailSummary),
    limits: $(S.detailLimits),
    decisions: $(S.detailDecisions), lots: $(S.detailLots), transactions: $(S.detailTransactions),
    events: $(S.detailEvents), eventsList: $(S.detailEventsList), actions: $(S.detailActions),
    deposit: $(S.detailDeposit), withdraw: $(S.detailWithdraw),
  },
});
const historyView = createHistoryView({
  api, onClose: () => $(S.historyButton).focus(),
  els: {
    root: $(S.history), back: $(S.historyBack), totals: $(S.historyTotals), daily: $(S.historyDaily),
    closed: $(S.historyClosed), empty: $(S.historyEmpty),
  },
});
const quiet = createQuiet({
  settings: quietFromQuery(window.location.search),
  els: { root: $(S.quiet), market: $(S.quietMarket), open: $(S.quietOpen), pnl: $(S.quietPnl) },
});
const pinPad = createPinPad({
  dialog: $(S.pinDialog), title: $(S.pinTitle), form: $(S.pinForm), display: $(S.pinDisplay),
  message: $(S.pinMessage), keys: $(S.pinKeys), api,
});
const auth = createAuth({ pinPad });
const limitsDialog = createLimitsDialog({
  els: {
    dialog: $(S.limitsDialog), form: $(S.limitsForm), title: $(S.limitsTitle), drawdown: $(S.limitsDrawdown),
    dailyLoss: $(S.limitsDailyLoss), trades: $(S.limitsTrades), cooldown: $(S.limitsCooldown),
    onTrip: $(S.limitsOnTrip), keyboard: $(S.limitsKeyboard), error: $(S.limitsError), cancel: $(S.limitsCancel),
    save: $(S.limitsSave),
  },
});
const addDialog = createAddDialog({
  api, onCreated: showNewCard, limitsDialog,
  els: {
    dialog: $(S.addDialog), form: $(S.addForm), algorithm: $(S.addAlgorithm), description: $(S.addDescription),
    ticker: $(S.addTicker), capital: $(S.addCapital), available: $(S.addAvailable), keyboard: $(S.addKeyboard),
    error: $(S.addError), cancel: $(S.addCancel), submit: $(S.addSubmit),
    params: $(S.addParams), preview: $(S.addPreview),
    previewStatus: $(S.addPreviewStatus), previewChart: $(S.addPreviewChart),
    previewFigures: $(S.addPreviewFigures), previewButton: $(S.addPreviewButton),
    limits: $(S.addLimits), limitsButton: $(S.addLimitsButton),
  },
});
const capitalDialog = createCapitalDialog({
  api, onDone: afterCapitalMove,
  els: {
    dialog: $(S.capitalDialog), form: $(S.capitalForm), title: $(S.capitalTitle), name: $(S.capitalName),
    limit: $(S.capitalLimit), amount: $(S.capitalAmount), keyboard: $(S.capitalKeyboard), error: $(S.capitalError),
    cancel: $(S.capitalCancel), submit: $(S.capitalSubmit),
  },
});
const stopDialog = createStopDialog({
  els: {
    dialog: $(S.stopDialog), name: $(S.stopName), text: $(S.stopText), error: $(S.stopError),
    cancel: $(S.stopCancel), confirm: $(S.stopConfirm),
  },
});

function marketNow() {
  return view.listing && view.listing.marketNow ? view.listing.marketNow.getTime() : Date.now();
}
useMarketClock(marketNow);

function render() {
  const listing = view.listing;
  if (listing) {
    const shown = new Set(listing.cards.map((c) => String(c.id)));
    for (const id of view.closing) if (!shown.has(id)) view.closing.delete(id);
    for (const id of view.historyKeys.keys()) if (!shown.has(id)) view.historyKeys.delete(id);
    const frozen = new Set(((view.health && view.health.mismatches) || []).map((m) => m.ticker));
    cardsView.update(listing.cards, view.closing, frozen);
  }
  renderStatus(header, view);
  if (listing) renderPause(pauseButton, pauseBanner, listing.pause);
  const messages = [];
  if (view.controlError) messages.push(view.controlError);
  if (view.failure) {
    const since = formatClock(view.failingSince);
    messages.push(`${view.failure} Since ${since}; showing the last data received, retrying…`);
  }
  messages.push(...staleReasons({ listing, health: view.health, now: marketNow() }));
  renderBanner(banner, messages);
  renderBanner(brokerBanner, brokerMessages(view.health && view.health.mismatches));
}

function historyKey(card) {
  return [card.tradeCount, card.shares, card.price, card.priceAt && card.priceAt.getTime(), card.capital].join('|');
}

async function refreshHistories(cards) {
  await Promise.all(cards.map(async (card) => {
    const key = historyKey(card);
    if (view.historyKeys.get(String(card.id)) === key) return;
    try {
      cardsView.setHistory(card.id, toHistory(await api.algorithmHistory(card.id)));
      view.historyKeys.set(String(card.id), key);
    } catch {
      const drawnBefore = view.historyKeys.has(String(card.id));
      if (!drawnBefore) cardsView.setHistory(card.id, { points: [], trades: [], failed: true });
    }
  }));
}

async function poll() {
  const changesBefore = view.changes;
  const [listing, cash, health, pnl] = await Promise.allSettled([
    api.listAlgorithms(), api.accountCash(), api.health(), api.pnlSummary(),
  ]);
  if (view.changes !== changesBefore) return { ok: false }; // outdated: refreshNow() has queued a new poll
  if (listing.status === 'rejected') {
    const { status, message } = listing.reason;
    view.failure = status === 0 ? 'Cannot reach the AutoTrader server.'
      : `The AutoTrader server could not answer (${status}: ${message}).`;
    view.failingSince = view.failingSince || new Date();
    render();
    return { ok: false };
  }
  view.failure = null;
  view.failingSince = null;
  view.listing = toListing(listing.value);
  view.cash = cash.status === 'fulfilled' ? toCash(cash.value).available : view.cash;
  view.cashError = cash.status === 'rejected' ? cash.reason.message : null;
  view.health = health.status === 'fulfilled' ? toHealth(health.value) : null;
  view.pnlSummary = pnl.status === 'fulfilled' ? toPnlSummary(pnl.value) : view.pnlSummary;
  view.lastUpdate = new Date();
  render();
  refreshHistories(view.listing.cards);
  detailView.refresh();
  historyView.refresh();
  quiet.update({ ...view.listing, today: view.pnlSummary && view.pnlSummary.today });
  const { marketOpen, nextOpen } = view.listing;
  return { ok: true, marketOpen, msUntilOpen: nextOpen ? nextOpen.getTime() - marketNow() : null };
}

const poller = createPoller({
  tick: poll,
  delayAfter: (outcome) => nextDelay(outcome, intervals),
  onScheduled: (delay, outcome) => {
    document.body.dataset.pollMs = String(delay);
    document.body.dataset.pollCount = String(Number(document.body.dataset.pollCount || 0) + 1);
    document.body.dataset.marketOpen = String(Boolean(outcome.ok && outcome.marketOpen));
  },
});

function showNewCard(raw) {
  view.changes += 1;
  if (raw && raw.id !== undefined && view.listing) {
    const card = toCard(raw);
    view.listing.cards = [...view.listing.cards.filter((c) => String(c.id) !== String(card.id)), card];
    render();
  }
  poller.refreshNow();
}

async function stopCard(cardId) {
  const card = view.listing && view.listing.cards.find((c) => String(c.id) === String(cardId));
  if (!card) return;
  const session = auth.flow('stop', 'PIN to stop');
  if (!(await session.ensure())) return;
  const stop = () => session.withToken((token) => api.stopAlgorithm(card.id, token));
  const stopped = await stopDialog.confirm(card, stop);
  session.forget(); // stopped or kept running: the next stop asks for the PIN again
  if (!stopped) return;
  view.changes += 1;
  view.closing.add(String(card.id));
  render();
  poller.refreshNow();
}

// PAUSE / RESUME all trading: the same button, each with its own PIN.
async function togglePause() {
  const paused = Boolean(view.listing && view.listing.pause && view.listing.pause.paused);
  const session = auth.flow(paused ? 'resume' : 'pause', paused ? 'PIN to RESUME trading' : 'PIN to PAUSE all trading');
  try {
    const answer = await session.withToken((token) => (paused ? api.resume(token) : api.pause(token)));
    if (answer === undefined) return;
    view.controlError = null;
    view.changes += 1;
    if (view.listing) view.listing.pause = toPause(answer);
    render();
    poller.refreshNow();
  } catch (error) {
    view.controlError = `${paused ? 'RESUME' : 'PAUSE'} failed: ${error.message}`;
    render();
  } finally {
    session.forget();
  }
}

// RESUME CARD: clear a tripped limit (its PIN is asked for this one action).
async function resumeCard(detail) {
  const session = auth.flow('resume', `PIN to resume ${detail.ticker} #${detail.id}`);
  try {
    const answer = await session.withToken((token) => api.resumeCard(detail.id, token));
    if (answer === undefined) return;
    view.controlError = null;
    view.changes += 1;
    poller.refreshNow();
    detailView.refresh();
  } catch (error) {
    view.controlError = `RESUME CARD failed: ${error.message}`;
    render();
  } finally {
    session.forget();
  }
}

async function changeLimits(detail) {
  const session = auth.flow('limits', `PIN to change ${detail.ticker} #${detail.id}'s limits`);
  try {
    if (!(await session.ensure())) return;
    const saved = await limitsDialog.edit(detail.limits, {
      title: `Limits of ${detail.ticker} #${detail.id}`,
      onSave: (limits) => session.withToken((token) => api.setLimits(detail.id, limitsBody(limits), token)),
    });
    if (!saved) return;
    view.changes += 1;
    poller.refreshNow();
    detailView.refresh();
  } finally {
    session.forget();
  }
}

// DEPOSIT / WITHDRAW on the detail view: the PIN for that one move, then the amount.
async function moveCapital(kind, card) {
  const session = auth.flow(kind, kind === 'deposit' ? 'PIN to deposit' : 'PIN to withdraw');
  if (await session.ensure()) capitalDialog.open(card, kind, session);
}

function afterCapitalMove() {
  view.changes += 1;
  detailView.refresh();
  poller.refreshNow();
}

async function addCard() {
  const session = auth.flow('add', 'PIN to add');
  if (await session.ensure()) addDialog.open(session);
}

$(S.addButton).addEventListener('click', addCard);
pauseButton.addEventListener('click', togglePause);
$(S.historyButton).addEventListener('click', () => historyView.open());
enableRowScrolling($(S.cards));
// A long press on a touch screen would open Chromium's context menu over the kiosk.
document.addEventListener('contextmenu', (event) => event.preventDefault());
poller.start();
