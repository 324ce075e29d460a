import { readBodyCapped } from '@duo-nest/core/internal';
import { DuoAdminError, type DuoAdminErrorCode } from './admin-api.errors.js';
import {
  normalizeDuoAdminClientOptions,
  type DuoAdminClientOptions,
  type NormalizedDuoAdminClientOptions,
} from './admin-api-options.js';
import {
  canonicalParams,
  DuoSigningInputError,
  formatDuoDate,
  signRequestV5,
  type DuoSignedParams,
} from './admin-api-signing.js';
import type {
  DuoAuthLogCursor,
  DuoAuthLogEntry,
  DuoAuthLogPage,
  DuoAuthLogQuery,
} from './admin-api.types.js';

/** The v2 authentication log endpoint. */
export const DUO_AUTH_LOG_PATH = '/admin/v2/logs/authentication';
/** Duo's largest page of the v2 authentication log. */
export const DUO_AUTH_LOG_MAX_LIMIT = 1000;
/**
 * Duo documents a deliberate delay (about two minutes) before new authentications appear in the
 * log; a query whose maxtime is more recent may be incomplete. Callers keep maxtime this far back.
 */
export const DUO_AUTH_LOG_LAG_MS = 2 * 60_000;

const USER_AGENT = `duo-nest-admin/0.1.0 node/${process.versions.node}`;
/** 13-digit Unix ms: Duo's v2 log times (years 2001 to 2286). */
const MIN_MS = 1e12;
const MAX_MS = 1e13 - 1;
const TXID_RE = /^[\x21-\x2b\x2d-\x7e]{1,128}$/; // printable ASCII without ',' (the cursor separator)
const CURSOR_TS_RE = /^\d{13}$/;

/** Test hooks: the clock, the sleep between 429 retries, and the jitter source. */
export interface DuoAdminClientInternals {
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

/** Observes each page call (metrics): the outcome, HTTP tries and the total time in ms. Must not throw. */
export type DuoAdminCallObserver = (
  result: 'success' | DuoAdminErrorCode,
  attempts: number,
  durationMs: number,
) => void;

interface HttpAnswer {
  status: number;
  headers: Headers;
  body: string;
}

/**
 * A client of Duo's Admin API, for the authentication log: no Nest, no state beyond its options.
 * Every request is signed (signature v5, HMAC-SHA512), has a total timeout and a size cap, never
 * follows a redirect, and is retried only on 429 with exponential backoff and jitter (honouring
 * Retry-After), a bounded number of times. Failures are DuoAdminErrors with stable codes; no
 * message carries the secret key, the integration key or a signature.
 */
export class DuoAdminClient {
  /** The options without the secret key. */
  readonly options: Readonly<Omit<NormalizedDuoAdminClientOptions, 'secretKey'>>;
  private readonly secretKey: string;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;
  private readonly observer?: DuoAdminCallObserver;

  constructor(
    options: DuoAdminClientOptions & { onAdminCall?: DuoAdminCallObserver },
    internals: DuoAdminClientInternals = {},
  ) {
    const { secretKey, ...rest } = normalizeDuoAdminClientOptions(options);
    this.options = Object.freeze(rest);
    this.secretKey = secretKey;
    this.now = internals.now ?? Date.now;
    this.sleep = internals.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.random = internals.random ?? Math.random;
    this.observer = options.onAdminCall;
  }

  /** One page of `GET /admin/v2/logs/authentication`. */
  async getAuthenticationLogPage(query: DuoAuthLogQuery): Promise<DuoAuthLogPage> {
    const params = authLogParams(query);
    const started = performance.now();
    let attempts = 0;
    try {
      const { answer, tries } = await this.signedGet(DUO_AUTH_LOG_PATH, params);
      attempts = tries;
      const page = parseAuthLogPage(answer, this.redactions());
      this.observe('success', attempts, started);
      return { ...page, attempts };
    } catch (err) {
      const code = err instanceof DuoAdminError ? err.code : 'admin_response';
      this.observe(code, attempts, started);
      throw err;
    }
  }

  /**
   * Every page of a query, oldest first by default, following `next_offset` until Duo says there is
   * no more (or `maxPages` is reached). A cursor that does not move is refused (admin_response), so
   * a misbehaving answer cannot loop forever. Each page's `nextOffset` is the cursor to persist.
   */
  async *authenticationLogPages(
    query: Omit<DuoAuthLogQuery, 'nextOffset'> & { nextOffset?: DuoAuthLogCursor },
    options: { maxPages?: number } = {},
  ): AsyncGenerator<DuoAuthLogPage, void, undefined> {
    const maxPages = options.maxPages ?? Number.POSITIVE_INFINITY;
    let cursor = query.nextOffset;
    for (let n = 0; n < maxPages; n++) {
      const page = await this.getAuthenticationLogPage({ ...query, nextOffset: cursor });
      yield page;
      if (page.nextOffset === null || page.entries.length === 0) {
        return;
      }
      if (cursor && page.nextOffset[0] === cursor[0] && page.nextOffset[1] === cursor[1]) {
        throw new DuoAdminError('admin_response', "Duo's next_offset did not move; paging stopped");
      }
      cursor = page.nextOffset;
    }
  }

  private observe(result: 'success' | DuoAdminErrorCode, attempts: number, started: number) {
    try {
      this.observer?.(result, attempts, performance.now() - started);
    } catch {
      // an observer must not break the call
    }
  }

  private redactions(): string[] {
    return [this.secretKey, this.options.integrationKey];
  }

  /** Signs and sends a GET, retrying on 429 only; returns the final answer. */
  private async signedGet(
    path: string,
    params: DuoSignedParams,
  ): Promise<{ answer: HttpAnswer; tries: number }> {
    const query = canonicalParams(params);
    const url = `${this.options.apiOrigin}${path}${query ? `?${query}` : ''}`;
    for (let attempt = 1; ; attempt++) {
      // A fresh Date (and so signature) on every try: a retried request must not look stale.
      const date = formatDuoDate(this.now());
      const { authorization } = signRequestV5(this.options.integrationKey, this.secretKey, {
        date,
        method: 'GET',
        host: this.options.signedHost,
        path,
        params,
        body: '',
      });
      const answer = await this.send(url, path, { date, authorization });
      if (answer.status !== 429) {
        throwOnStatus(answer, this.redactions());
        return { answer, tries: attempt };
      }
      const waitMs = this.backoff(attempt, answer.headers.get('retry-after'));
      if (attempt >= this.options.maxAttempts || waitMs === undefined) {
        throw new DuoAdminError(
          'admin_rate_limited',
          `Duo is rate-limiting the Admin API (429 after ${attempt} ${attempt === 1 ? 'try' : 'tries'}); try again later`,
          { status: 429, duoCode: duoCodeOf(answer.body) },
        );
      }
      await this.sleep(waitMs);
    }
  }

  /**
   * The wait before try `attempt + 1`: Retry-After when Duo sends one (seconds or an HTTP date),
   * else base * 2^(attempt-1) plus up to 1 s of jitter, capped at backoffMaxMs. Undefined when
   * Retry-After asks for longer than the cap (the caller fails at once instead of hanging).
   */
  private backoff(attempt: number, retryAfter: string | null): number | undefined {
    const { backoffBaseMs, backoffMaxMs } = this.options;
    const asked = parseRetryAfter(retryAfter, this.now());
    if (asked !== undefined) {
      return asked <= backoffMaxMs ? asked : undefined;
    }
    const exponential = backoffBaseMs * 2 ** (attempt - 1);
    const jitter = Math.floor(this.random() * Math.min(1_000, backoffBaseMs));
    return Math.min(backoffMaxMs, exponential + jitter);
  }

  private async send(
    url: string,
    path: string,
    auth: { date: string; authorization: string },
  ): Promise<HttpAnswer> {
    const { timeoutMs, maxResponseBytes } = this.options;
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      const response = await this.options.fetch(url, {
        method: 'GET',
        headers: {
          accept: 'application/json',
          authorization: auth.authorization,
          date: auth.date,
          'user-agent': USER_AGENT,
        },
        redirect: 'manual',
        signal,
      });
      const body = await readCapped(response, maxResponseBytes);
      return { status: response.status, headers: response.headers, body };
    } catch (err) {
      if (err instanceof DuoAdminError) {
        throw err;
      }
      const what = signal.aborted
        ? `did not answer within ${timeoutMs} ms`
        : 'could not be reached';
      throw new DuoAdminError(
        'admin_unavailable',
        `Duo's Admin API ${what} (${path}); check DUO_ADMIN_API_HOST and the network`,
        {},
        { cause: err },
      );
    }
  }
}

/** Checks a query and builds its parameters (nothing is sent for a bad one). */
function authLogParams(query: DuoAuthLogQuery): DuoSignedParams {
  const bad = (what: string) =>
    new DuoAdminError('admin_invalid_argument', `The authentication log query ${what}`);
  if (typeof query !== 'object' || query === null) {
    throw bad('must be an object');
  }
  const { mintime, maxtime, limit = DUO_AUTH_LOG_MAX_LIMIT, sort = 'ts:asc' } = query;
  for (const [name, value] of [
    ['mintime', mintime],
    ['maxtime', maxtime],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < MIN_MS || value > MAX_MS) {
      throw bad(`needs ${name} as a 13-digit Unix time in milliseconds`);
    }
  }
  if (mintime >= maxtime) {
    throw bad('needs mintime strictly less than maxtime');
  }
  if (!Number.isInteger(limit) || limit < 1 || limit > DUO_AUTH_LOG_MAX_LIMIT) {
    throw bad(`needs limit from 1 to ${DUO_AUTH_LOG_MAX_LIMIT}`);
  }
  if (sort !== 'ts:asc' && sort !== 'ts:desc') {
    throw bad('needs sort ts:asc or ts:desc');
  }
  const params: Record<string, string | string[]> = {
    limit: String(limit),
    maxtime: String(maxtime),
    mintime: String(mintime),
    sort,
  };
  if (query.nextOffset !== undefined) {
    const offset = query.nextOffset;
    if (
      !Array.isArray(offset) ||
      offset.length !== 2 ||
      typeof offset[0] !== 'string' ||
      !CURSOR_TS_RE.test(offset[0]) ||
      typeof offset[1] !== 'string' ||
      !TXID_RE.test(offset[1])
    ) {
      throw bad("needs nextOffset as Duo's [13-digit ms, txid] pair");
    }
    params.next_offset = `${offset[0]},${offset[1]}`;
  }
  if (query.applications !== undefined) {
    const apps = query.applications;
    if (
      !Array.isArray(apps) ||
      apps.length === 0 ||
      apps.length > 100 ||
      !apps.every((a) => typeof a === 'string' && /^[A-Z0-9]{20}$/.test(a))
    ) {
      throw bad('needs applications as 1 to 100 integration keys');
    }
    // Sorted, so the canonical string is the same whether the server sorts values or not.
    params.applications = [...new Set(apps)].sort();
  }
  return params;
}

function throwOnStatus(answer: HttpAnswer, redactions: string[]): void {
  const { status } = answer;
  if (status >= 200 && status < 300) {
    return;
  }
  const details = { status, duoCode: duoCodeOf(answer.body) };
  const duoText = describeFail(answer.body, redactions);
  if (status >= 300 && status < 400) {
    throw new DuoAdminError(
      'admin_unavailable',
      `Duo's Admin API answered with a redirect (${status}), which is never followed`,
      details,
    );
  }
  if (status >= 500) {
    throw new DuoAdminError(
      'admin_unavailable',
      `Duo's Admin API answered ${status}; it is having trouble, try again later`,
      details,
    );
  }
  if (status === 401) {
    throw new DuoAdminError(
      'admin_unauthorized',
      `Duo refused the Admin API credentials (401${duoText}); check DUO_ADMIN_INTEGRATION_KEY, DUO_ADMIN_SECRET_KEY, DUO_ADMIN_API_HOST and this server's clock`,
      details,
    );
  }
  if (status === 403) {
    throw new DuoAdminError(
      'admin_forbidden',
      `Duo refused the Admin API call (403${duoText}); grant the Admin API application "Grant read log"`,
      details,
    );
  }
  throw new DuoAdminError(
    'admin_rejected',
    `Duo refused the Admin API call (${status}${duoText})`,
    details,
  );
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function duoCodeOf(body: string): number | undefined {
  const parsed = parseJson(body);
  return isRecord(parsed) && Number.isInteger(parsed.code) ? (parsed.code as number) : undefined;
}

/** `: <code> <message> (<detail>)` from a FAIL envelope, printable, bounded and redacted. */
function describeFail(body: string, redactions: string[]): string {
  const parsed = parseJson(body);
  if (!isRecord(parsed) || parsed.stat !== 'FAIL') {
    return '';
  }
  const parts = [parsed.code, parsed.message, parsed.message_detail]
    .filter((v) => typeof v === 'string' || typeof v === 'number')
    .map((v) => String(v));
  const text = parts
    .join(' ')
    .replace(/[^\x20-\x7e]/g, '?')
    .slice(0, 200);
  const safe = redactions.reduce((acc, r) => (r ? acc.split(r).join('[redacted]') : acc), text);
  return safe ? `: ${safe}` : '';
}

/** Retry-After in ms (delta-seconds or an HTTP date), undefined when absent or unreadable. */
function parseRetryAfter(value: string | null, nowMs: number): number | undefined {
  if (value === null || value.trim() === '') {
    return undefined;
  }
  const text = value.trim();
  if (/^\d{1,6}$/.test(text)) {
    return Number(text) * 1000;
  }
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

const ENTRY_TEXT_FIELDS = ['reason', 'factor', 'event_type', 'isotimestamp'] as const;

function responseError(what: string): DuoAdminError {
  return new DuoAdminError('admin_response', `Duo's authentication log answer ${what}`);
}

function optionalText(value: unknown): value is string | null | undefined {
  return value === undefined || value === null || typeof value === 'string';
}

/** Checks Duo's envelope and every entry; a malformed page is refused whole. */
function parseAuthLogPage(
  answer: HttpAnswer,
  redactions: string[],
): Omit<DuoAuthLogPage, 'attempts'> {
  const body = parseJson(answer.body);
  if (!isRecord(body)) {
    throw responseError('is not a JSON object');
  }
  if (body.stat !== 'OK') {
    throw new DuoAdminError(
      body.stat === 'FAIL' ? 'admin_rejected' : 'admin_response',
      `Duo's authentication log answer is not stat OK${describeFail(answer.body, redactions)}`,
      { status: answer.status, duoCode: duoCodeOf(answer.body) },
    );
  }
  const response = body.response;
  if (!isRecord(response) || !Array.isArray(response.authlogs)) {
    throw responseError('lacks response.authlogs');
  }
  const metadata = isRecord(response.metadata) ? response.metadata : {};
  const entries = response.authlogs.map((raw, i) => parseEntry(raw, i));
  return {
    entries,
    totalObjects: parseTotal(metadata.total_objects),
    nextOffset: parseNextOffset(metadata.next_offset),
  };
}

function parseEntry(raw: unknown, index: number): DuoAuthLogEntry {
  const bad = (what: string) => responseError(`has an entry (${index}) ${what}`);
  if (!isRecord(raw)) {
    throw bad('that is not an object');
  }
  if (typeof raw.txid !== 'string' || !TXID_RE.test(raw.txid)) {
    throw bad('without a readable txid');
  }
  if (typeof raw.timestamp !== 'number' || !Number.isFinite(raw.timestamp)) {
    throw bad('without a numeric timestamp');
  }
  if (typeof raw.result !== 'string') {
    throw bad('without a result');
  }
  for (const field of ENTRY_TEXT_FIELDS) {
    if (!optionalText(raw[field])) {
      throw bad(`whose ${field} is not text`);
    }
  }
  const user = raw.user ?? {};
  const application = raw.application ?? {};
  if (
    !isRecord(user) ||
    !optionalText(user.name) ||
    !isRecord(application) ||
    !optionalText(application.key)
  ) {
    throw bad('whose user or application is malformed');
  }
  return {
    ...raw,
    txid: raw.txid,
    timestamp: raw.timestamp,
    result: raw.result,
    reason: (raw.reason as string | null | undefined) ?? null,
    factor: (raw.factor as string | null | undefined) ?? null,
    user: { ...user, name: user.name ?? null },
    application: { ...application, key: application.key ?? null },
  };
}

/** A number, or `{ value: number }` as some v2 log endpoints send it (unconfirmed for this one). */
function parseTotal(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) {
    return value;
  }
  if (isRecord(value)) {
    return parseTotal(value.value);
  }
  if (value === undefined || value === null) {
    return undefined;
  }
  throw responseError('has a malformed metadata.total_objects');
}

function parseNextOffset(value: unknown): DuoAuthLogCursor | null {
  if (value === undefined || value === null || (Array.isArray(value) && value.length === 0)) {
    return null;
  }
  if (
    Array.isArray(value) &&
    value.length === 2 &&
    typeof value[0] === 'string' &&
    CURSOR_TS_RE.test(value[0]) &&
    typeof value[1] === 'string' &&
    TXID_RE.test(value[1])
  ) {
    return [value[0], value[1]];
  }
  throw responseError("has a metadata.next_offset that is not Duo's [ms, txid] pair");
}

function readCapped(response: Response, maxBytes: number): Promise<string> {
  return readBodyCapped(
    response,
    maxBytes,
    () =>
      new DuoAdminError(
        'admin_response',
        `Duo's Admin API answer is larger than ${maxBytes} bytes`,
        {
          status: response.status,
        },
      ),
  );
}

// Re-exported so a caller can tell a signing refusal apart (never expected for our own params).
export { DuoSigningInputError };
