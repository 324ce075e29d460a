import { readFileSync, statSync } from 'node:fs';
import { BlockList, isIP } from 'node:net';
import * as tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { inspect } from 'node:util';
import {
  Agent,
  ProxyAgent,
  fetch as undiciFetch,
  request as undiciRequest,
  type Dispatcher,
} from 'undici';

/** The largest CA bundle read (a full public root store is about 250 KiB). */
export const DUO_CA_MAX_BYTES = 1024 * 1024;

const PEM_BLOCK_RE = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;
const SCHEME_RE = /^[a-z][a-z0-9+.-]*:\/\//i;
/** How a proxy URL with credentials looks in free text: scheme://user[:pass]@ */
const URL_CREDENTIALS_RE = /([a-z][a-z0-9+.-]*:\/\/)[^/\s@]*@/gi;

/** A proxy URL split into what may be shown (the origin) and what may not (the credentials). */
export interface ParsedProxyUrl {
  /** `http(s)://host[:port]`: no credentials, safe for logs and messages. */
  origin: string;
  /** The `Proxy-Authorization` value built from the URL's user and password, if any. */
  authorization?: string;
}

/**
 * Parses an outbound proxy URL: `http://[user:pass@]host:port` or `https://...` (a proxy reached
 * over TLS); a bare `host:port` means `http://host:port`, as curl reads it. The error never
 * repeats the value, which may hold a password.
 */
export function parseProxyUrl(value: unknown): ParsedProxyUrl | { error: string } {
  const bad = {
    error:
      'must be a proxy URL such as http://proxy.example:3128 or http://user:password@proxy.example:3128 (http:// or https://, no path)',
  };
  if (typeof value !== 'string' || value.length === 0 || value.length > 2048) {
    return bad;
  }
  if (/[\s\p{Cc}]/u.test(value)) {
    return bad;
  }
  const text = SCHEME_RE.test(value) ? value : `http://${value}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return bad;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return {
      error: 'must be an http:// or https:// proxy URL (SOCKS and other schemes are not supported)',
    };
  }
  if (!url.hostname || (url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) {
    return bad;
  }
  if (/[?#]/.test(text.slice(text.indexOf('//') + 2))) {
    return bad;
  }
  const origin = `${url.protocol}//${url.host}`;
  if (!url.username && !url.password) {
    return { origin };
  }
  let user: string;
  let password: string;
  try {
    user = decodeURIComponent(url.username);
    password = decodeURIComponent(url.password);
  } catch {
    return { error: 'has a user or password that is not valid percent-encoding' };
  }
  return {
    origin,
    authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
  };
}

/** Replaces the `user:password@` part of every URL in a text (for messages that quote a URL). */
export function redactUrlCredentials(text: string): string {
  return text.replace(URL_CREDENTIALS_RE, '$1[redacted]@');
}

type NoProxyRule =
  | { kind: 'all' }
  | { kind: 'domain'; domain: string; port?: number }
  | { kind: 'ip'; ip: string; port?: number }
  | { kind: 'cidr'; list: BlockList };

/**
 * Reads a NO_PROXY list as curl does: entries separated by commas (or white space), matched
 * case-insensitively. `*` alone: every host. `example.com`, `.example.com` and `*.example.com`:
 * that domain and every name under it. An IP address matches itself; `10.0.0.0/8` or `fd00::/8`:
 * every address in the block. `host:port` or `[v6]:port`: only that port. Entries that make no
 * sense are ignored (as curl does): the call then goes through the proxy, never around it.
 */
export function parseNoProxy(value: string | undefined): NoProxyRule[] {
  const rules: NoProxyRule[] = [];
  for (const raw of (value ?? '').split(/[\s,]+/)) {
    let entry = raw.trim().toLowerCase();
    if (!entry) {
      continue;
    }
    if (entry === '*') {
      rules.push({ kind: 'all' });
      continue;
    }
    if (entry.includes('/')) {
      const [ip, bits] = entry.split('/', 2);
      const family = isIP(ip);
      const prefix = Number(bits);
      if (family && /^\d{1,3}$/.test(bits) && prefix <= (family === 4 ? 32 : 128)) {
        const list = new BlockList();
        list.addSubnet(ip, prefix, family === 4 ? 'ipv4' : 'ipv6');
        rules.push({ kind: 'cidr', list });
      }
      continue;
    }
    let port: number | undefined;
    const bracketed = /^\[([0-9a-f:.]+)\](?::(\d{1,5}))?$/.exec(entry);
    if (bracketed) {
      entry = bracketed[1];
      port = bracketed[2] === undefined ? undefined : Number(bracketed[2]);
    } else if (isIP(entry) !== 6) {
      const hostPort = /^(.+):(\d{1,5})$/.exec(entry);
      if (hostPort) {
        entry = hostPort[1];
        port = Number(hostPort[2]);
      }
    }
    if (port !== undefined && (port < 1 || port > 65535)) {
      continue;
    }
    if (isIP(entry)) {
      rules.push({ kind: 'ip', ip: canonicalIp(entry), port });
      continue;
    }
    const domain = entry.replace(/^\*?\./, '').replace(/\.$/, '');
    if (/^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$/.test(domain)) {
      rules.push({ kind: 'domain', domain, port });
    }
  }
  return rules;
}

/** True when a NO_PROXY list (as parsed above) sends calls to this URL directly. */
export function noProxyMatches(rules: readonly NoProxyRule[], target: URL): boolean {
  const host = target.hostname
    .replace(/^\[|\]$/g, '')
    .replace(/\.$/, '')
    .toLowerCase();
  const port = Number(target.port || (target.protocol === 'https:' ? 443 : 80));
  const family = isIP(host);
  return rules.some((rule) => {
    switch (rule.kind) {
      case 'all':
        return true;
      case 'cidr':
        return family !== 0 && rule.list.check(host, family === 4 ? 'ipv4' : 'ipv6');
      case 'ip':
        return family !== 0 && rule.ip === canonicalIp(host) && portOk(rule.port, port);
      case 'domain':
        return (
          (host === rule.domain || host.endsWith(`.${rule.domain}`)) && portOk(rule.port, port)
        );
    }
  });
}

function portOk(rulePort: number | undefined, port: number): boolean {
  return rulePort === undefined || rulePort === port;
}

function canonicalIp(ip: string): string {
  return isIP(ip) === 6 ? new URL(`http://[${ip}]/`).hostname.slice(1, -1) : ip;
}

/**
 * Checks a PEM bundle of extra trusted certificates: at least one certificate, every one of them
 * parses, and no private key (a key does not belong in a trust bundle). Returns the certificates.
 */
export function parseCaBundle(pem: string | Buffer): { certs: string[] } | { error: string } {
  const text = Buffer.isBuffer(pem) ? pem.toString('utf8') : pem;
  if (typeof text !== 'string') {
    return { error: 'must be PEM text or a Buffer of PEM certificates' };
  }
  const certs: string[] = [];
  for (const match of text.matchAll(PEM_BLOCK_RE)) {
    const label = match[1];
    if (label.includes('PRIVATE KEY')) {
      return { error: 'holds a private key; give only the CA certificate(s)' };
    }
    if (label !== 'CERTIFICATE' && label !== 'TRUSTED CERTIFICATE') {
      continue;
    }
    try {
      new X509Certificate(match[0]);
    } catch {
      return { error: 'holds a certificate that does not parse' };
    }
    certs.push(match[0]);
  }
  if (certs.length === 0) {
    return { error: 'holds no PEM certificate (-----BEGIN CERTIFICATE-----)' };
  }
  return { certs };
}

/** Reads and checks a CA bundle file at boot: readable, at most 1 MiB, and a valid bundle. */
export function readCaFile(path: unknown): { certs: string[] } | { error: string } {
  if (typeof path !== 'string' || path.length === 0 || /[\0\r\n]/.test(path)) {
    return { error: 'must be the path of a PEM file' };
  }
  let data: Buffer;
  try {
    if (statSync(path).size > DUO_CA_MAX_BYTES) {
      return { error: `is larger than ${DUO_CA_MAX_BYTES} bytes` };
    }
    data = readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    return { error: `cannot be read (${code})` };
  }
  return parseCaBundle(data);
}

/** Node's default trust store (with NODE_EXTRA_CA_CERTS where Node can tell it, 22.15+). */
function defaultRoots(): readonly string[] {
  const get = (tls as { getCACertificates?: (type: string) => string[] }).getCACertificates;
  return typeof get === 'function' ? get('default') : tls.rootCertificates;
}

/** How the Duo client reaches Duo: the settings the transport was built from. */
export interface DuoTransportSettings {
  /** Duo's origin (https://api-xxx.duosecurity.com). */
  apiOrigin: string;
  /** A proxy URL, `false` for none, or undefined to read the environment. */
  proxy?: string | false;
  /** A NO_PROXY list, or undefined to read the environment. */
  noProxy?: string;
  /** Extra trusted certificates (already checked). */
  extraCa?: readonly string[];
  /** Total time of one call in ms (the connect timeout is bounded by it too). */
  timeoutMs: number;
  /** A caller's fetch (tests); it receives `init.dispatcher` when a proxy or CA is configured. */
  fetch?: typeof fetch;
}

/** Where a proxy setting came from, for messages (names only, never values). */
export type DuoProxySource = 'proxy' | 'https_proxy' | 'HTTPS_PROXY' | 'http_proxy';

/**
 * The proxy the environment gives for a Duo origin, as curl reads it: https_proxy, then
 * HTTPS_PROXY, for https://; http_proxy only (never HTTP_PROXY, which a CGI request can set) for an
 * http:// simulator. NO_PROXY: no_proxy, then NO_PROXY.
 */
export function proxyFromEnvironment(
  apiOrigin: string,
  env: NodeJS.ProcessEnv,
): { proxy?: string; source?: DuoProxySource; noProxy?: string } {
  const names: DuoProxySource[] = apiOrigin.startsWith('http:')
    ? ['http_proxy']
    : ['https_proxy', 'HTTPS_PROXY'];
  const source = names.find((n) => (env[n] ?? '').trim() !== '');
  const noProxy = [env.no_proxy, env.NO_PROXY].find((v) => (v ?? '').trim() !== '');
  return {
    ...(source ? { proxy: env[source]!.trim(), source } : {}),
    ...(noProxy !== undefined ? { noProxy } : {}),
  };
}

const kDescribe = Symbol('describe');

/**
 * The outbound path of every Duo call: direct, or through an HTTP(S) proxy (a CONNECT tunnel,
 * TLS to Duo end to end), trusting Node's roots plus any extra CA. Certificate verification is
 * always on (`rejectUnauthorized: true`, whatever NODE_TLS_REJECT_UNAUTHORIZED says) once a proxy
 * or a CA is configured. The proxy's credentials live only inside the dispatcher: this object
 * prints, inspects and serialises as `{ proxy: <origin or false>, extraCa: <count> }`.
 */
export class DuoTransport {
  /** The proxy's origin (no credentials), or false when Duo is reached directly. */
  readonly proxy: string | false;
  /** How many extra CA certificates are trusted for Duo. */
  readonly extraCa: number;
  /**
   * True when calls must go through a fetch the caller gave (the tests' seam): `fetch` is then the
   * only path. Otherwise `request` is used: undici's request API costs a third of fetch's CPU.
   */
  readonly injectsFetch: boolean;
  readonly #dispatcher?: Dispatcher;
  readonly #fetch: typeof fetch;

  constructor(proxy: ParsedProxyUrl | undefined, settings: DuoTransportSettings) {
    this.proxy = proxy ? proxy.origin : false;
    this.extraCa = settings.extraCa?.length ?? 0;
    this.injectsFetch = settings.fetch !== undefined;
    const tlsOptions = {
      rejectUnauthorized: true,
      ...(this.extraCa > 0 ? { ca: [...defaultRoots(), ...settings.extraCa!] } : {}),
    };
    const connectTimeout = Math.max(1, settings.timeoutMs);
    if (proxy) {
      this.#dispatcher = new ProxyAgent({
        uri: proxy.origin,
        ...(proxy.authorization ? { token: proxy.authorization } : {}),
        requestTls: tlsOptions,
        // The proxy's own certificate (https:// proxy) may be signed by the same company CA.
        proxyTls: tlsOptions,
        connectTimeout,
      });
    } else if (this.extraCa > 0) {
      this.#dispatcher = new Agent({ connect: { ...tlsOptions, timeout: connectTimeout } });
    }
    // undici's own fetch with undici's dispatcher: Node's bundled fetch may be another undici.
    this.#fetch =
      settings.fetch ??
      (this.#dispatcher
        ? (undiciFetch as unknown as typeof fetch)
        : globalThis.fetch.bind(globalThis));
  }

  /** One HTTP call to Duo through this transport. */
  fetch(url: string, init: RequestInit): Promise<Response> {
    return this.#fetch(
      url,
      this.#dispatcher
        ? ({ ...init, dispatcher: this.#dispatcher } as unknown as RequestInit)
        : init,
    );
  }

  /**
   * One HTTP call to Duo through this transport with undici's request API (no WHATWG streams): the
   * same dispatcher as `fetch` (proxy, extra CA) or undici's global one. Redirects are never
   * followed; the caller must read or destroy the body.
   */
  request(
    url: string,
    init: {
      method: 'POST';
      headers: Record<string, string>;
      body: string;
      signal: AbortSignal;
    },
  ): Promise<Dispatcher.ResponseData> {
    const pending = undiciRequest(
      url,
      this.#dispatcher ? { ...init, dispatcher: this.#dispatcher } : init,
    );
    return settleOnAbort(pending, init.signal);
  }

  /**
   * Closes the proxy or CA agent (the app's shutdown, after its requests are done): gracefully for
   * up to `graceMs`, then by force, since a tunnel the proxy never answered would hold it forever.
   */
  async close(graceMs = 1_000): Promise<void> {
    const dispatcher = this.#dispatcher;
    if (!dispatcher) {
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const closed = await Promise.race([
      dispatcher.close().then(
        () => true,
        () => true,
      ),
      new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), graceMs);
      }),
    ]);
    clearTimeout(timer);
    if (!closed) {
      await dispatcher.destroy().catch(() => undefined);
    }
  }

  [kDescribe](): { proxy: string | false; extraCa: number } {
    return { proxy: this.proxy, extraCa: this.extraCa };
  }

  toJSON(): { proxy: string | false; extraCa: number } {
    return this[kDescribe]();
  }

  [inspect.custom](): string {
    return `DuoTransport ${inspect(this[kDescribe]())}`;
  }

  toString(): string {
    return `DuoTransport(proxy=${this.proxy || 'none'}, extraCa=${this.extraCa})`;
  }
}

/**
 * Rejects with the signal's reason as soon as it aborts, as fetch does. undici's request honours
 * the signal only once a connection is there: a proxy that never answers CONNECT (or a connect
 * still under way) would otherwise hold the call past its timeout. The request itself is dropped by
 * undici when the connection comes; an answer that still arrives after the abort is discarded.
 */
function settleOnAbort(
  pending: Promise<Dispatcher.ResponseData>,
  signal: AbortSignal,
): Promise<Dispatcher.ResponseData> {
  return new Promise((resolve, reject) => {
    // The reason is the caller's (a TimeoutError DOMException here), passed on as fetch does.
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    pending.then(
      (response) => {
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) {
          response.body.destroy();
        }
        resolve(response);
      },
      (err: Error) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/** An issue of one transport option: the option's name and what is wrong (never its value). */
export interface DuoTransportIssue {
  field: string;
  message: string;
}

/**
 * Validates the proxy, NO_PROXY and CA options (reading the environment when `proxy` or `noProxy`
 * is undefined) and builds the transport. Issues are returned, not thrown, so every bad option is
 * listed at once.
 */
export function buildDuoTransport(
  options: {
    proxy?: unknown;
    noProxy?: unknown;
    ca?: unknown;
    caFile?: unknown;
  },
  settings: { apiOrigin: string; timeoutMs: number; fetch?: typeof fetch },
  env: NodeJS.ProcessEnv = process.env,
): { transport?: DuoTransport; issues: DuoTransportIssue[]; noProxy: string } {
  const issues: DuoTransportIssue[] = [];
  const fromEnv = proxyFromEnvironment(settings.apiOrigin, env);
  let proxyText: string | undefined;
  let proxyField = 'proxy';
  if (options.proxy === undefined) {
    proxyText = fromEnv.proxy;
    proxyField = `proxy (from ${fromEnv.source ?? 'the environment'})`;
  } else if (options.proxy !== false) {
    proxyText = typeof options.proxy === 'string' ? options.proxy.trim() : '';
    if (typeof options.proxy !== 'string') {
      issues.push({ field: 'proxy', message: 'must be a proxy URL string, or false for none' });
      proxyText = undefined;
    }
  }
  let noProxy = '';
  if (options.noProxy === undefined) {
    noProxy = fromEnv.noProxy ?? '';
  } else if (typeof options.noProxy === 'string') {
    noProxy = options.noProxy;
  } else {
    issues.push({ field: 'noProxy', message: 'must be a NO_PROXY list string' });
  }
  let parsedProxy: ParsedProxyUrl | undefined;
  if (proxyText !== undefined) {
    const parsed = parseProxyUrl(proxyText);
    if ('error' in parsed) {
      issues.push({ field: proxyField, message: parsed.error });
    } else if (
      !settings.apiOrigin ||
      !noProxyMatches(parseNoProxy(noProxy), new URL(settings.apiOrigin))
    ) {
      parsedProxy = parsed;
    }
  }
  const extraCa: string[] = [];
  if (options.ca !== undefined) {
    const parsed =
      typeof options.ca === 'string' || Buffer.isBuffer(options.ca)
        ? parseCaBundle(options.ca)
        : { error: 'must be PEM text or a Buffer of PEM certificates' };
    if ('error' in parsed) {
      issues.push({ field: 'ca', message: parsed.error });
    } else {
      extraCa.push(...parsed.certs);
    }
  }
  if (options.caFile !== undefined) {
    const parsed = readCaFile(options.caFile);
    if ('error' in parsed) {
      issues.push({ field: 'caFile', message: parsed.error });
    } else {
      extraCa.push(...parsed.certs);
    }
  }
  if (issues.length > 0) {
    return { issues, noProxy };
  }
  return {
    transport: new DuoTransport(parsedProxy, {
      apiOrigin: settings.apiOrigin,
      extraCa,
      timeoutMs: settings.timeoutMs,
      ...(settings.fetch ? { fetch: settings.fetch } : {}),
    }),
    issues,
    noProxy,
  };
}

const CERT_ERROR_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** True when a call failed because the peer's TLS certificate did not verify. */
export function isCertificateFailure(err: unknown): boolean {
  for (
    let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0;
    typeof e === 'object' && e !== null && depth < 5;
    e = e.cause as typeof e, depth++
  ) {
    if (typeof e.code === 'string' && CERT_ERROR_CODES.has(e.code)) {
      return true;
    }
  }
  return false;
}

/**
 * Why a call failed below HTTP, in words for the operator: a certificate that is not trusted, a
 * proxy that refused the tunnel, or nothing more specific. Reads only codes and status numbers.
 */
export function describeTransportFailure(err: unknown): string | undefined {
  // Duck-typed: errors from Node's internals may come from another realm (vm, test runners).
  for (
    let e = err as { code?: unknown; message?: unknown; cause?: unknown } | undefined, depth = 0;
    typeof e === 'object' && e !== null && depth < 5;
    e = e.cause as typeof e, depth++
  ) {
    const code = e.code;
    if (typeof code === 'string' && CERT_ERROR_CODES.has(code)) {
      return `Duo's certificate is not trusted (${code}); behind TLS inspection, set DUO_CA_FILE to the company CA`;
    }
    const proxyStatus = /Proxy response \((\d{3})\)|Proxy Authentication Required \((\d{3})\)/.exec(
      String(e.message),
    );
    if (proxyStatus) {
      const status = proxyStatus[1] ?? proxyStatus[2];
      return status === '407'
        ? 'the proxy refused the tunnel (407 Proxy Authentication Required); check the proxy credentials'
        : `the proxy refused the tunnel (${status})`;
    }
  }
  return undefined;
}
