import { AuditRepository, type AuditEvent, type AuditFilter } from '../../src/audit/index.js';
import { Browser, location, type RunningApp } from './app-harness.js';

export const JSON_ACCEPT = { accept: 'application/json' } as const;

let counter = 0;
/** A username no other test of this run uses (the simulator enrolls unknown users). */
export function uniqueUser(prefix = 'user'): string {
  counter += 1;
  return `${prefix}-${process.pid}-${counter}`;
}

/**
 * POST /login then Duo's authorize (auto mode answers at once): returns the callback URL Duo sent
 * the browser to. `headers` go to the app's requests only (a proxy target, an Accept header).
 */
export async function signOnToCallback(
  browser: Browser,
  appUrl: string,
  username: string,
  headers: Record<string, string> = {},
): Promise<string> {
  const start = await browser.postForm(`${appUrl}/login`, { username }, { headers });
  if (start.status !== 303) {
    throw new Error(`POST /login answered ${start.status}`);
  }
  const duo = await browser.fetch(location(start));
  if (duo.status !== 302) {
    throw new Error(`Duo's authorize answered ${duo.status}`);
  }
  return location(duo);
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

/** The audit trail of an in-process app, newest first. */
export async function auditEvents(app: RunningApp, filter: AuditFilter): Promise<AuditEvent[]> {
  const page = await app.app.get(AuditRepository).findPage(filter, undefined, 200);
  return page.items;
}
