// The API client: same origin, JSON, a timeout on every call, the
// customer's token from the session. Errors come back as `ApiError` with
// the server's body (code, message, …) so the page can say them as
// sentences (messages.js).

const TIMEOUT_MS = 10000;
const TOKEN_KEY = 'ticketing.session';

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || body?.code || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

/** The logged-in customer `{accessToken, customerId, email, expiresAtMs}`, or null. */
export function session() {
  try {
    const s = JSON.parse(localStorage.getItem(TOKEN_KEY) || 'null');
    if (s && s.expiresAtMs > Date.now()) return s;
  } catch {
    /* a damaged entry is no session */
  }
  return null;
}

export function setSession(s) {
  if (s) localStorage.setItem(TOKEN_KEY, JSON.stringify(s));
  else localStorage.removeItem(TOKEN_KEY);
  window.dispatchEvent(new Event('session'));
}

/**
 * One call: `api('POST', '/api/reservations', {body, headers})` → the
 * parsed body (null for 204). Throws ApiError (code NETWORK / TIMEOUT when
 * the server was not reached or did not answer in time).
 */
export async function api(method, path, { body, headers = {}, timeoutMs = TIMEOUT_MS } = {}) {
  const h = { ...headers };
  const s = session();
  if (s) h.authorization = `Bearer ${s.accessToken}`;
  if (body !== undefined) h['content-type'] = 'application/json';
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  let res;
  try {
    res = await fetch(path, {
      method,
      headers: h,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: abort.signal,
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError(0, { code: abort.signal.aborted ? 'TIMEOUT' : 'NETWORK', message: String(e) });
  } finally {
    clearTimeout(timer);
  }
  const text = await res.text().catch(() => '');
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = { code: `HTTP_${res.status}`, message: text.slice(0, 200) };
  }
  if (!res.ok) {
    if (res.status === 401 && s) setSession(null);
    throw new ApiError(res.status, parsed || { code: `HTTP_${res.status}` });
  }
  return parsed;
}

/** A random key for Idempotency-Key headers. */
export function newKey(prefix) {
  return `${prefix}-${crypto.randomUUID()}`;
}
