import type { IncomingMessage } from 'node:http';
import type { AdminCredentials } from './admin-api.js';
import type { AppKeys } from './jwt.js';
import type { SimStore } from './state.js';
import type { AutoMode, NewUserPolicy } from './types.js';

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
  store: SimStore;
  keys: AppKeys;
  clientId: string;
  scheme: 'http' | 'https';
  /** host:port the server listens on, used when a request carries no Host header. */
  apiHost: string;
  applicationName: string;
  newUserPolicy: NewUserPolicy;
  auto: AutoMode | null;
  errorRedirectOnDeny: boolean;
  codeTtlMs: number;
  /** Admin API credentials of the authentication log endpoint. */
  admin: AdminCredentials;
}

/**
 * The origin a request was addressed to: scheme + the Host header, i.e. exactly the api host the
 * client configured. Audiences and the id_token issuer are built from it, so a client that
 * configured `localhost:port` and one that configured `127.0.0.1:port` each get their own.
 */
export function requestOrigin(ctx: SimContext, req: IncomingMessage): string {
  return `${ctx.scheme}://${req.headers.host ?? ctx.apiHost}`;
}
