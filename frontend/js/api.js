// Every call the page makes to the AutoTrader API, and one error type for all of them.

export class ApiError extends Error {
  // status 0 means the server could not be reached at all (network error or time-out).
  constructor(message, { status = 0, retryAfterSeconds = null, body = null } = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.retryAfterSeconds = retryAfterSeconds;
    this.body = body;
  }

  get unreachable() {
    return this.status === 0 || this.status === 502 || this.status === 504;
  }
}

const FALLBACK_MESSAGES = {
  0: 'Cannot reach the AutoTrader server.',
  400: 'The request was not accepted.',
  401: 'A valid PIN is needed for this.',
  404: 'Not found: it may have been removed already.',
  429: 'Too many attempts. Please wait and try again.',
  503: 'The broker cannot be reached right now.',
};

function plainMessage(status, body) {
  if (body && typeof body.error === 'string' && body.error.trim()) return body.error.trim();
  if (body && typeof body.message === 'string' && body.message.trim()) return body.message.trim();
  return FALLBACK_MESSAGES[status] || `The server answered with an error (${status}).`;
}

function retryAfter(response, body) {
  const fromBody = body && Number(body.retry_after ?? body.retry_after_seconds);
  if (Number.isFinite(fromBody) && fromBody > 0) return fromBody;
  const header = Number(response.headers.get('Retry-After'));
  return Number.isFinite(header) && header > 0 ? header : null;
}

async function readJson(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

export function createApi({ baseUrl = '', timeoutMs = 15000, fetchImpl = window.fetch.bind(window) } = {}) {
  async function request(method, path, { body, token } = {}) {
    const headers = { Accept: 'application/json' };
    const init = { method, headers, cache: 'no-store', credentials: 'same-origin' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    if (token) headers.Authorization = `Bearer ${token}`;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    init.signal = controller.signal;
    let response;
    try {
      response = await fetchImpl(baseUrl + path, init);
    } catch {
      throw new ApiError(FALLBACK_MESSAGES[0], { status: 0 });
    } finally {
      clearTimeout(timer);
    }
    const data = await readJson(response);
    if (!response.ok) {
      throw new ApiError(plainMessage(response.status, data), {
        status: response.status, retryAfterSeconds: retryAfter(response, data), body: data,
      });
    }
    return data;
  }

  const id = (value) => encodeURIComponent(String(value));
  return {
    listAlgorithms: () => request('GET', '/api/algorithms'),
    // The whole life of the card, thinned by the server to at most `points` bars.
    algorithmHistory: (algoId, points = 400) =>
      request('GET', `/api/algorithms/${id(algoId)}/history?window=all&points=${points}`),
    cardDetail: (algoId) => request('GET', `/api/algorithms/${id(algoId)}/detail`),
    cardChart: (algoId, zoom, points = 400) =>
      request('GET', `/api/algorithms/${id(algoId)}/chart?zoom=${encodeURIComponent(zoom)}&points=${points}`),
    historyView: () => request('GET', '/api/history'),
    pnlSummary: () => request('GET', '/api/pnl-summary'),
    availableAlgorithms: () => request('GET', '/api/available-algorithms'),
    accountCash: () => request('GET', '/api/account/cash'),
    health: () => request('GET', '/api/health'),
    // The token serves one action only: 'add', 'stop', 'deposit', 'withdraw', 'export', 'pause', 'resume' or 'limits'.
    validatePin: (pin, action) => request('POST', '/api/validate-pin', { body: { pin, action } }),
    createAlgorithm: (fields, token) => request('POST', '/api/algorithms', { body: fields, token }),
    stopAlgorithm: (algoId, token) => request('DELETE', `/api/algorithms/${id(algoId)}`, { token }),
    // kind 'deposit' or 'withdraw', each with a token minted for that action.
    moveCapital: (algoId, kind, amount, token) =>
      request('POST', `/api/algorithms/${id(algoId)}/${kind === 'withdraw' ? 'withdraw' : 'deposit'}`,
        { body: { amount }, token }),
    controls: () => request('GET', '/api/controls'),
    pause: (token) => request('POST', '/api/pause', { body: {}, token }),
    resume: (token) => request('POST', '/api/resume', { body: {}, token }),
    setLimits: (algoId, limits, token) => request('PUT', `/api/algorithms/${id(algoId)}/limits`, { body: limits, token }),
    resumeCard: (algoId, token) => request('POST', `/api/algorithms/${id(algoId)}/resume`, { body: {}, token }),
    startPreview: (fields) => request('POST', '/api/preview', { body: fields }),
    getPreview: (previewId) => request('GET', `/api/preview/${id(previewId)}`),
  };
}
