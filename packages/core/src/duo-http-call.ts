// One call to Duo over HTTP: a form POST through the configured transport (proxy, extra CA), with a
// total timeout, a response size cap and no redirect following; failures become DuoErrors whose
// text never carries proxy credentials.
import type { Readable } from 'node:stream';
import type { NormalizedDuoClientOptions } from './duo-client-options.js';
import { DuoError, type DuoErrorCode } from './duo.errors.js';
import {
  describeTransportFailure,
  isCertificateFailure,
  redactUrlCredentials,
} from './duo-transport.js';

const USER_AGENT = `duo-nest/0.1.0 node/${process.versions.node}`;

/** Filled by `post` for the `onDuoCall` observer: the HTTP round trip alone. */
export interface DuoCallTiming {
  httpMs?: number;
}

export interface DuoHttpResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** What a Duo call needs of the client's options. */
export type DuoHttpOptions = Pick<
  NormalizedDuoClientOptions,
  'transport' | 'timeoutMs' | 'maxResponseBytes'
>;

/** POSTs a form to Duo; `badResponse` is the error code of an answer over the size cap. */
export async function postForm(
  options: DuoHttpOptions,
  url: string,
  form: Record<string, string>,
  badResponse: DuoErrorCode,
  timing: DuoCallTiming = {},
): Promise<DuoHttpResponse> {
  const { timeoutMs, maxResponseBytes } = options;
  // A plain controller and timer, cleared when the call ends: AbortSignal.timeout makes its signal
  // transferable, which costs more CPU than the rest of the timeout handling together.
  const controller = new AbortController();
  const { signal } = controller;
  const timer = setTimeout(abortOnTimeout, timeoutMs, controller);
  timer.unref();
  const tooLarge = (): DuoError =>
    new DuoError(badResponse, `Duo's answer is larger than ${maxResponseBytes} bytes`);
  const started = performance.now();
  try {
    // Through the configured transport: the proxy (CONNECT tunnel) and extra CA, if any.
    return options.transport.injectsFetch
      ? await viaFetch(options, url, form, signal, tooLarge)
      : await viaRequest(options, url, form, signal, tooLarge);
  } catch (err) {
    if (err instanceof DuoError) {
      throw err;
    }
    const proxy = options.transport.proxy;
    const why = signal.aborted ? undefined : describeTransportFailure(err);
    const what = signal.aborted
      ? `did not answer within ${timeoutMs} ms`
      : `could not be reached${why ? `: ${why}` : ''}`;
    // The proxy's origin only: its credentials are never in the options or the transport's text.
    const via = proxy ? ` through the proxy ${redactUrlCredentials(proxy)}` : '';
    // A certificate that does not verify is never an outage: failmode open must not let it in.
    const code =
      !signal.aborted && isCertificateFailure(err) ? 'untrusted_certificate' : 'unavailable';
    throw new DuoError(
      code,
      `Duo ${what} (${new URL(url).pathname}${via}); check DUO_API_HOST${proxy ? ', the proxy' : ''} and the network`,
      {
        cause: err,
      },
    );
  } finally {
    clearTimeout(timer);
    timing.httpMs = performance.now() - started;
  }
}

/** The same reason AbortSignal.timeout gives, so a timeout's cause reads as before. */
function abortOnTimeout(controller: AbortController): void {
  controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
}

const FORM_HEADERS = {
  accept: 'application/json',
  'content-type': 'application/x-www-form-urlencoded',
  'user-agent': USER_AGENT,
} as const;

/** The default path: undici's request API, body read from its Node stream with the cap. */
async function viaRequest(
  options: DuoHttpOptions,
  url: string,
  form: Record<string, string>,
  signal: AbortSignal,
  tooLarge: () => Error,
): Promise<DuoHttpResponse> {
  const response = await options.transport.request(url, {
    method: 'POST',
    headers: { ...FORM_HEADERS },
    body: new URLSearchParams(form).toString(),
    signal,
  });
  const headers: Record<string, string> = {};
  for (const name of Object.keys(response.headers)) {
    const value = response.headers[name];
    if (name !== 'set-cookie' && value !== undefined) {
      // Repeated fields joined as fetch's Headers joins them.
      headers[name] = typeof value === 'string' ? value : value.join(', ');
    }
  }
  const body = await readStreamCapped(
    response.body,
    headers['content-length'],
    options.maxResponseBytes,
    tooLarge,
  );
  return { status: response.statusCode, headers, body };
}

/** A caller's fetch (the tests' seam): the path every call took before undici's request. */
async function viaFetch(
  options: DuoHttpOptions,
  url: string,
  form: Record<string, string>,
  signal: AbortSignal,
  tooLarge: () => Error,
): Promise<DuoHttpResponse> {
  const response = await options.transport.fetch(url, {
    method: 'POST',
    body: new URLSearchParams(form),
    headers: { ...FORM_HEADERS },
    redirect: 'manual',
    signal,
  });
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    if (name !== 'set-cookie') {
      headers[name] = value;
    }
  });
  const body = await readBodyCapped(response, options.maxResponseBytes, tooLarge);
  return { status: response.status, headers, body };
}

/** Refuses the answers no Duo endpoint gives on success: 429, 5xx and redirects. */
export function throwOnTransportStatus(res: DuoHttpResponse): void {
  if (res.status === 429) {
    throw new DuoError(
      'rate_limited',
      'Duo is rate-limiting this application (429); try again later',
    );
  }
  if (res.status >= 500) {
    throw new DuoError(
      'unavailable',
      `Duo answered ${res.status}; it is having trouble, try again later`,
    );
  }
  if (res.status >= 300 && res.status < 400) {
    throw new DuoError(
      'unavailable',
      `Duo answered with a redirect (${res.status}), which is never followed`,
    );
  }
}

/**
 * A response body as UTF-8 text, read chunk by chunk and given up (stream cancelled, `tooLarge()`
 * thrown) as soon as it passes `maxBytes`, or at once when Content-Length says it will. Shared by
 * every call to Duo (the Auth API here, the Admin API in the audit package).
 */
export async function readBodyCapped(
  response: Response,
  maxBytes: number,
  tooLarge: () => Error,
): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? '0');
  if (declared > maxBytes) {
    await response.body?.cancel();
    throw tooLarge();
  }
  if (!response.body) {
    return '';
  }
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) {
      break;
    }
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, total).toString('utf8');
}

/**
 * A Node stream body (undici's request) as UTF-8 text, under the same rule as `readBodyCapped`:
 * refused at once when Content-Length says it is over `maxBytes`, else given up (stream destroyed,
 * `tooLarge()` thrown) as soon as it passes the cap. A stream error (an abort, a reset) rejects.
 */
export function readStreamCapped(
  body: Readable,
  contentLength: string | undefined,
  maxBytes: number,
  tooLarge: () => Error,
): Promise<string> {
  if (Number(contentLength ?? '0') > maxBytes) {
    body.destroy();
    return Promise.reject(tooLarge());
  }
  return new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    body.on('data', (chunk: Buffer) => {
      if (total > maxBytes) {
        return;
      }
      total += chunk.length;
      if (total > maxBytes) {
        body.destroy();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    body.once('end', () => {
      resolve(
        chunks.length === 1
          ? chunks[0].toString('utf8')
          : Buffer.concat(chunks, total).toString('utf8'),
      );
    });
    body.once('error', reject);
  });
}
