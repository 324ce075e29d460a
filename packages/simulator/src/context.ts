import type { AdminCredentials } from './admin-api.js';
import type { SimStore } from './state.js';
import type { AutoMode } from './types.js';

export const PATHS = {
  health: '/oauth/v1/health_check',
  authorize: '/oauth/v1/authorize',
  token: '/oauth/v1/token',
  prompt: '/frame/prompt',
  control: '/__sim/',
  adminAuthLog: '/admin/v2/logs/authentication',
} as const;

/** What every endpoint handler needs; one per running simulator. */
export interface SimContext {
  /** Directory, applications, codes, switches. */
  store: SimStore;
  auto: AutoMode | null;
  errorRedirectOnDeny: boolean;
  codeTtlMs: number;
  /** Admin API credentials of the authentication log endpoint. */
  admin: AdminCredentials;
}

/**
 * A simulator URL as its clients must name it: the public origin and a path. Every audience
 * expected and the id_token issuer are built from it, never from a request's Host header (Duo has
 * one API hostname per account).
 */
export function publicUrl(ctx: SimContext, path: string): string {
  return ctx.store.publicOrigin + path;
}

/**
 * The canonical public host: lower-cased, the scheme's default port dropped (443 for https, 80 for
 * http), as the WHATWG URL serialises it. Throws on anything but `host[:port]`.
 */
export function canonicalPublicHost(value: string, scheme: 'http' | 'https'): string {
  if (
    typeof value !== 'string' ||
    !/^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::\d{1,5})?$/.test(value)
  ) {
    throw new Error('publicHost must be host[:port] (no scheme, path or credentials)');
  }
  let url: URL;
  try {
    url = new URL(`${scheme}://${value}`);
  } catch {
    throw new Error('publicHost must be host[:port] (no scheme, path or credentials)');
  }
  return url.host;
}
