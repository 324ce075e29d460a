import { simulatorAt, type DuoTestFactor } from './simulator.js';
import { openTarget, type DuoTestServer } from './target.js';

/** Options of {@link signInWithDuo}. */
export interface SignInWithDuoOptions {
  /** The route that starts the sign-on (your first factor, then DuoStartGuard). @default '/login' */
  startPath?: string;
  /**
   * The page whose form holds the CSRF field (`@DuoFormFields()`): its `X-CSRF-Token` header, or
   * else the `_csrf` field of its HTML, is sent with the start. @default startPath
   */
  formPath?: string;
  /** More form fields of the start, such as a first factor's `password`. */
  fields?: Record<string, string>;
  /** Where the app should send the browser after Duo (a same-origin path). */
  returnTo?: string;
  /** The method the user approves with on Duo's prompt. @default the directory's, else duo_push */
  factor?: DuoTestFactor;
  /** Cookies to send from the start (an existing browser session, say). */
  cookies?: string[];
}

/** A completed sign-on: the browser's cookies, ready for supertest or fetch. */
export interface DuoSignIn {
  /** `name=value` pairs: `request(app).get('/me').set('Cookie', signIn.cookies)`. */
  cookies: string[];
  /** The same as one `Cookie` header: `fetch(url, { headers: { cookie: signIn.cookieHeader } })`. */
  cookieHeader: string;
  /** Where the app sent the browser after the callback (returnTo or its default). */
  location: string;
}

/** Where a sign-on stopped. */
export type DuoSignInStage = 'form' | 'start' | 'duo' | 'callback';

/**
 * A sign-on that did not end in a session: the stage, the HTTP status there, and the reason (the
 * app's error code, or Duo's denial reason such as `user_mistake`, `no_response`, `locked_out`).
 */
export class DuoSignInError extends Error {
  constructor(
    readonly stage: DuoSignInStage,
    readonly status: number,
    readonly reason: string | undefined,
    /** The browser's cookies at that point (a fail-open session, say). */
    readonly cookies: string[],
  ) {
    super(`Sign-on stopped at ${stage}: HTTP ${status}${reason ? ` (${reason})` : ''}`);
    this.name = 'DuoSignInError';
  }
}

/** One browser's cookies for the app (a single origin): name to value, as Set-Cookie left them. */
class CookieJar {
  readonly #cookies = new Map<string, string>();

  constructor(initial: readonly string[]) {
    for (const pair of initial) {
      this.#put(pair, undefined);
    }
  }

  keep(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';');
      const maxAge = attributes
        .map((a) => a.trim().toLowerCase())
        .find((a) => a.startsWith('max-age='));
      this.#put(pair, maxAge === undefined ? undefined : Number(maxAge.slice(8)));
    }
  }

  #put(pair: string, maxAgeSec: number | undefined): void {
    const eq = pair.indexOf('=');
    if (eq <= 0) {
      return;
    }
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    if (value === '' || (maxAgeSec !== undefined && maxAgeSec <= 0)) {
      this.#cookies.delete(name);
    } else {
      this.#cookies.set(name, value);
    }
  }

  list(): string[] {
    return [...this.#cookies].map(([name, value]) => `${name}=${value}`);
  }

  header(): string {
    return this.list().join('; ');
  }
}

const HTML_ENTITIES: Record<string, string> = {
  '&amp;': '&',
  '&#38;': '&',
  '&quot;': '"',
  '&#34;': '"',
  '&#39;': "'",
  '&lt;': '<',
  '&gt;': '>',
};
const unescapeHtml = (text: string) =>
  text.replace(/&(?:amp|quot|lt|gt|#38|#34|#39);/g, (e) => HTML_ENTITIES[e] ?? e);

/** The app's error code in a JSON refusal (`{ error }`), if it sent one. */
async function errorCode(res: Response): Promise<string | undefined> {
  const text = await res.text();
  try {
    const body = JSON.parse(text) as { error?: unknown };
    return typeof body.error === 'string' ? body.error : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Duo's authorize URL in a 200 start: the JSON start's `{ authorizeUrl }` (`jsonStart`), or the
 * link of the "Sign on with Duo" button page (`skipButtonPress: false`).
 */
function authorizeUrlIn(text: string): string | undefined {
  try {
    const body = JSON.parse(text) as { authorizeUrl?: unknown };
    return typeof body.authorizeUrl === 'string' ? body.authorizeUrl : undefined;
  } catch {
    const href = /href="([^"]*\/oauth\/v1\/authorize\?[^"]*)"/.exec(text)?.[1];
    return href && unescapeHtml(href);
  }
}

const isRedirect = (status: number) => status >= 301 && status <= 308 && status !== 304;

/**
 * Signs a user on through the real flow, as a browser would: GETs the sign-on form for its CSRF
 * token, POSTs the start (with `fields`, such as a first factor's password), follows the app's
 * redirect (or its "Sign on with Duo" button) to the simulator, approves Duo's prompt with the
 * user's method, and brings Duo's redirect back to the app's callback. Nothing is skipped or
 * forged: the app checks the CSRF token, the binding cookie, the state, the code and the id_token
 * as in production. Duo's redirect is sent to `server` whatever the origin of `redirectUri`.
 *
 * Throws {@link DuoSignInError} when the sign-on ends without a session: a refused start (Duo
 * down, a wrong password, a cap), Duo's denial (scripted with `sim.nextOutcome`), or a refused
 * callback.
 *
 * @example
 * const { cookies } = await signInWithDuo(app, 'alice', { fields: { password: 'pw' } });
 * await request(app.getHttpServer()).get('/me').set('Cookie', cookies).expect(200);
 */
export async function signInWithDuo(
  server: DuoTestServer,
  username: string,
  options: SignInWithDuoOptions = {},
): Promise<DuoSignIn> {
  const target = await openTarget(server);
  try {
    return await signIn(target.base, username, options);
  } finally {
    await target.release();
  }
}

async function signIn(
  base: string,
  username: string,
  options: SignInWithDuoOptions,
): Promise<DuoSignIn> {
  const startPath = options.startPath ?? '/login';
  const jar = new CookieJar(options.cookies ?? []);
  const send = async (url: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    const cookie = jar.header();
    if (cookie) {
      headers.set('cookie', cookie);
    }
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    jar.keep(res);
    return res;
  };
  const fail = (stage: DuoSignInStage, status: number, reason?: string) =>
    new DuoSignInError(stage, status, reason, jar.list());

  // The form: its CSRF token (the header @DuoFormFields() sets, else the hidden field).
  const form = await send(new URL(options.formPath ?? startPath, base).href, {
    headers: { accept: 'text/html' },
  });
  const page = await form.text();
  const token =
    form.headers.get('x-csrf-token') ??
    /name="_csrf"\s+value="([^"]+)"/.exec(page)?.[1] ??
    /value="([^"]+)"\s+name="_csrf"/.exec(page)?.[1];
  if (!form.ok || !token) {
    throw fail('form', form.status, token ? undefined : 'no_csrf_token');
  }

  // The start: the first factor's fields, the username, returnTo and the CSRF token.
  const body = new URLSearchParams({ ...options.fields, username, _csrf: unescapeHtml(token) });
  if (options.returnTo !== undefined) {
    body.set('returnTo', options.returnTo);
  }
  const start = await send(new URL(startPath, base).href, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
  });
  let authorizeUrl: string | undefined;
  if (isRedirect(start.status)) {
    authorizeUrl = start.headers.get('location') ?? undefined;
    await start.arrayBuffer();
  } else if (start.ok) {
    authorizeUrl = authorizeUrlIn(await start.text());
  } else {
    throw fail('start', start.status, await errorCode(start));
  }
  if (!authorizeUrl || !new URL(authorizeUrl, base).pathname.endsWith('/oauth/v1/authorize')) {
    // A redirect elsewhere: a fail-open session (Duo down, failmode open), or no Duo at all.
    throw fail('start', start.status, 'no_duo_redirect');
  }

  // Duo: bypass and scripted outcomes answer at once; otherwise the user approves the prompt.
  const duo = await fetch(authorizeUrl, { redirect: 'manual' });
  let callback: string | undefined;
  if (isRedirect(duo.status)) {
    callback = duo.headers.get('location') ?? undefined;
    await duo.arrayBuffer();
  } else {
    const html = await duo.text();
    const txn = /name="txn" value="([^"]+)"/.exec(html)?.[1];
    if (!duo.ok || !txn) {
      throw fail('duo', duo.status, /data-reason="([^"]*)"/.exec(html)?.[1]);
    }
    const origin = new URL(authorizeUrl).origin;
    const factor = options.factor ?? simulatorAt(origin)?.factorOf(username) ?? 'duo_push';
    const prompt = await fetch(`${origin}/frame/prompt`, {
      method: 'POST',
      redirect: 'manual',
      body: new URLSearchParams({ txn: unescapeHtml(txn), factor, action: 'approve' }),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    const answer = await prompt.text();
    if (!isRedirect(prompt.status)) {
      throw fail('duo', prompt.status, /data-reason="([^"]*)"/.exec(answer)?.[1]);
    }
    callback = prompt.headers.get('location') ?? undefined;
  }
  if (!callback) {
    throw fail('duo', duo.status, 'no_redirect');
  }

  // Back to the app's callback, on the app under test.
  const back = new URL(callback);
  const done = await send(new URL(`${back.pathname}${back.search}`, base).href, {
    headers: { accept: 'application/json' },
  });
  if (!isRedirect(done.status)) {
    throw fail('callback', done.status, await errorCode(done));
  }
  await done.arrayBuffer();
  // The callback itself must open the session (a cookie sent in `cookies` does not count).
  if (!done.headers.getSetCookie().some((c) => /^(__Host-)?duo_session=[^;]/.test(c))) {
    throw fail('callback', done.status, 'no_session_cookie');
  }
  return {
    cookies: jar.list(),
    cookieHeader: jar.header(),
    location: done.headers.get('location') ?? '',
  };
}
