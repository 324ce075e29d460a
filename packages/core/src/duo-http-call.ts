// One call to Duo over HTTP: a form POST through the configured transport (proxy, extra CA), with a
// total timeout, a response size cap and no redirect following; failures become DuoErrors whose
// text never carries proxy credentials.
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
  const signal = AbortSignal.timeout(timeoutMs);
  const started = performance.now();
  try {
    // Through the configured transport: the proxy (CONNECT tunnel) and extra CA, if any.
    const response = await options.transport.fetch(url, {
      method: 'POST',
      body: new URLSearchParams(form),
      headers: {
        accept: 'application/json',
        'content-type': 'application/x-www-form-urlencoded',
        'user-agent': USER_AGENT,
      },
      redirect: 'manual',
      signal,
    });
    const headers: Record<string, string> = {};
    response.headers.forEach((value, name) => {
      if (name !== 'set-cookie') {
        headers[name] = value;
      }
    });
    const body = await readCapped(response, maxResponseBytes, badResponse);
    return { status: response.status, headers, body };
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
    timing.httpMs = performance.now() - started;
  }
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

async function readCapped(
  response: Response,
  maxBytes: number,
  code: DuoErrorCode,
): Promise<string> {
  return readBodyCapped(
    response,
    maxBytes,
    () => new DuoError(code, `Duo's answer is larger than ${maxBytes} bytes`),
  );
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
