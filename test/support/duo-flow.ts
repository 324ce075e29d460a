import { AuditRepository, type AuditEvent, type AuditFilter } from '@duo-nest/audit';
import { Browser, location, type RunningApp } from './app-harness.js';

export const JSON_ACCEPT = { accept: 'application/json' } as const;

let counter = 0;
/**
 * A username no other test of this run uses (the simulator enrolls unknown users). The prefix is
 * lower-cased: the app folds usernames to lower case, so the name a test holds is the stored one.
 */
export function uniqueUser(prefix = 'user'): string {
  counter += 1;
  return `${prefix.toLowerCase()}-${process.pid}-${counter}`;
}

/**
 * Environment for test apps that sign on many times from one address: rate limits out of the way
 * (variables the app does not know are ignored).
 */
export const NO_RATE_LIMITS = {
  RATE_LIMIT_LOGIN_PER_IP: '1000000',
  RATE_LIMIT_LOGIN_PER_USER: '1000000',
  RATE_LIMIT_CALLBACK_PER_IP: '1000000',
} as const;

/**
 * The hidden form fields of the sign-on page (the CSRF token when the app has one), read as a
 * browser would before posting the form.
 */
export async function signOnFormFields(
  browser: Browser,
  appUrl: string,
  headers: Record<string, string> = {},
): Promise<Record<string, string>> {
  const res = await browser.fetch(`${appUrl}/`, { headers: { ...headers, accept: 'text/html' } });
  const html = await res.text();
  const fields: Record<string, string> = {};
  for (const input of html.match(/<input[^>]*type="hidden"[^>]*>/g) ?? []) {
    const name = /name="([^"]+)"/.exec(input)?.[1];
    const value = /value="([^"]*)"/.exec(input)?.[1];
    if (name && value !== undefined && name !== 'returnTo') {
      fields[name] = value;
    }
  }
  return fields;
}

/** POSTs a form the way the sign-on page would (its hidden fields included). */
export async function postLikeBrowser(
  browser: Browser,
  appUrl: string,
  path: string,
  form: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<Response> {
  const hidden = await signOnFormFields(browser, appUrl, headers);
  return browser.postForm(`${appUrl}${path}`, { ...hidden, ...form }, { headers });
}

/** Options of {@link signOnToCallback}. */
export interface SignOnToCallbackOptions {
  /** More fields for POST /login (`returnTo`, say). */
  form?: Record<string, string>;
  /** Also return the authorize URL the app sent the browser to (its request JWT holds the state). */
  authorize?: boolean;
}

/**
 * POST /login then Duo's authorize (auto mode answers at once): returns the callback URL Duo sent
 * the browser to, or `{ callback, authorize }` with `options.authorize`. `headers` go to the app's
 * requests only (a proxy target, an Accept header).
 */
export async function signOnToCallback(
  browser: Browser,
  appUrl: string,
  username: string,
  headers?: Record<string, string>,
  options?: SignOnToCallbackOptions & { authorize?: false },
): Promise<string>;
export async function signOnToCallback(
  browser: Browser,
  appUrl: string,
  username: string,
  headers: Record<string, string>,
  options: SignOnToCallbackOptions & { authorize: true },
): Promise<{ callback: string; authorize: string }>;
export async function signOnToCallback(
  browser: Browser,
  appUrl: string,
  username: string,
  headers: Record<string, string> = {},
  options: SignOnToCallbackOptions = {},
): Promise<string | { callback: string; authorize: string }> {
  const form = { username, ...options.form };
  const start = await postLikeBrowser(browser, appUrl, '/login', form, headers);
  if (start.status !== 303) {
    throw new Error(`POST /login answered ${start.status}`);
  }
  const authorize = location(start);
  const duo = await browser.fetch(authorize);
  if (duo.status !== 302) {
    throw new Error(`Duo's authorize answered ${duo.status}`);
  }
  return options.authorize ? { callback: location(duo), authorize } : location(duo);
}

/** A whole sign-on: returns the callback's answer (303 to the return path on success). */
export async function signOn(
  browser: Browser,
  appUrl: string,
  username: string,
  headers: Record<string, string> = {},
): Promise<Response> {
  const callback = await signOnToCallback(browser, appUrl, username, headers);
  return browser.fetch(callback, { headers });
}

/** The audit trail of an in-process app, newest first: one page of `limit` events (200). */
export async function auditEvents(
  app: RunningApp,
  filter: AuditFilter = {},
  { limit = 200 }: { limit?: number } = {},
): Promise<AuditEvent[]> {
  const page = await app.app.get(AuditRepository).findPage(filter, undefined, limit);
  return page.items;
}

/** The Duo cookies (session and browser binding) a browser holds. */
export function sessionCookies(browser: Browser): string[] {
  return [...browser.cookies.keys()].filter((k) => /duo_(session|binding)$/.test(k));
}
