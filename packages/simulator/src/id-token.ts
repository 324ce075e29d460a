import { signJwt } from './jwt.js';
import type { Grant } from './state.js';
import type { TokenFault } from './types.js';
import { stableKey } from './users.js';

/** `exp = auth_time + 3600` and `expires_in: 3600`, as in the real 2023 sample. */
export const ID_TOKEN_LIFETIME_SEC = 3600;

/** ISO 8601 with microseconds and an explicit offset, like Duo's `isotimestamp`. */
export function isoMicros(ms: number, micros: number): string {
  const iso = new Date(ms).toISOString(); // 2023-10-07T03:16:30.719Z
  return `${iso.slice(0, 23)}${String(micros % 1000).padStart(3, '0')}+00:00`;
}

/** A rough OS/browser guess from the User-Agent, enough to fill `access_device`. */
export function describeAgent(ua: string): { os: string; browser: string; browserVersion: string } {
  const os = /Windows/.test(ua)
    ? 'Windows'
    : /Mac OS X/.test(ua)
      ? 'Mac OS X'
      : /Android/.test(ua)
        ? 'Android'
        : /Linux/.test(ua)
          ? 'Linux'
          : 'Unknown';
  const match =
    /(Edg|Firefox|Chrome|HeadlessChrome|Chromium|Safari)\/([\d.]+)/.exec(ua) ??
    /^([\w-]+)\/([\d.]+)/.exec(ua);
  const names: Record<string, string> = { Edg: 'Edge Chromium', HeadlessChrome: 'Chrome' };
  const browser = match ? (names[match[1]] ?? match[1]) : 'Unknown';
  return { os, browser, browserVersion: match?.[2] ?? '' };
}

const NULL_LOCATION = { city: null, state: null, country: null };

/** Claims of the id_token for a grant (protocol §9, the 2023 sample in §9.6). */
export function idTokenClaims(
  grant: Grant,
  ctx: { issuer: string; applicationName: string; nowSec: number },
): Record<string, unknown> {
  const authTime = Math.floor(grant.authTimeMs / 1000);
  const agent = describeAgent(grant.userAgent);
  const noDevice = grant.factor === 'not_available';
  const claims: Record<string, unknown> = {
    iss: ctx.issuer,
    sub: grant.user.username,
    aud: grant.clientId,
    exp: authTime + ID_TOKEN_LIFETIME_SEC,
    iat: ctx.nowSec,
    auth_time: authTime,
    auth_result: { result: 'allow', status: 'allow', status_msg: 'Login Successful' },
    auth_context: {
      txid: grant.txid,
      timestamp: authTime,
      user: {
        name: grant.user.username,
        key: stableKey('DU', `user:${grant.user.username.toLowerCase()}`),
        groups: grant.user.groups ?? [],
      },
      application: { name: ctx.applicationName, key: grant.clientId },
      auth_device: {
        ip: null,
        location: NULL_LOCATION,
        name: noDevice ? null : (grant.user.deviceName ?? 'iOS (+1 555-0100)'),
        key: noDevice ? null : stableKey('DP', `device:${grant.user.username.toLowerCase()}`),
      },
      access_device: {
        ip: grant.accessIp,
        location: NULL_LOCATION,
        hostname: null,
        epkey: stableKey('EP', `endpoint:${grant.userAgent}`),
        os: agent.os,
        os_version: '',
        browser: agent.browser,
        browser_version: agent.browserVersion,
        flash_version: 'uninstalled',
        java_version: 'uninstalled',
        is_encryption_enabled: 'unknown',
        is_firewall_enabled: 'unknown',
        is_password_set: 'unknown',
      },
      factor: grant.factor,
      event_type: 'authentication',
      result: 'success',
      reason: grant.reason,
      alias: grant.alias,
      isotimestamp: isoMicros(grant.authTimeMs, parseInt(grant.txid.slice(0, 4), 16)),
      email: grant.user.email ?? '',
      ood_software: null,
      trusted_endpoint_status: 'unknown',
    },
    preferred_username: grant.duoUname,
  };
  if (grant.nonce !== undefined) {
    claims.nonce = grant.nonce;
  }
  return claims;
}

function flipCase(name: string): string {
  const upper = name.toUpperCase();
  return upper !== name ? upper : name.toLowerCase();
}

type Claims = Record<string, unknown>;

/** Faults that change claims before an otherwise correct HS512 signature. */
const CLAIM_FAULTS: Partial<Record<TokenFault, (c: Claims, nowSec: number) => void>> = {
  wrong_iss: (c) => {
    c.iss = String(c.iss).replace(/\/oauth\/v1\/token$/, '');
  },
  wrong_aud: (c) => {
    c.aud = stableKey('DI', `other:${String(c.aud)}`);
  },
  aud_array: (c) => {
    c.aud = [c.aud, stableKey('DI', `other:${String(c.aud)}`)];
  },
  wrong_nonce: (c, nowSec) => {
    c.nonce = `wrong-nonce-${nowSec}-${typeof c.nonce === 'string' ? c.nonce : 'none'}`;
  },
  missing_nonce: (c) => {
    delete c.nonce;
  },
  expired: (c, nowSec) => {
    c.iat = nowSec - 3900;
    c.exp = nowSec - 300;
  },
  just_inside_leeway: (c, nowSec) => {
    c.exp = nowSec - 30;
  },
  future_iat: (c, nowSec) => {
    c.iat = nowSec + 300;
  },
  wrong_username: (c) => {
    c.preferred_username = `${String(c.preferred_username)}-other`;
  },
  case_changed_username: (c) => {
    c.preferred_username = flipCase(String(c.preferred_username));
  },
};

/** The id_token as Duo would sign it, or with one of the claim/signature faults applied. */
export function signIdToken(
  claims: Claims,
  secret: string,
  fault: TokenFault | null,
  nowSec: number,
): string {
  if (fault === 'bad_signature') {
    return signJwt(claims, `${secret}-not-the-secret`, 'HS512');
  }
  if (fault === 'wrong_alg_hs256') {
    return signJwt(claims, secret, 'HS256');
  }
  if (fault === 'alg_none') {
    return signJwt(claims, secret, 'none');
  }
  const c = { ...claims };
  if (fault) {
    CLAIM_FAULTS[fault]?.(c, nowSec);
  }
  return signJwt(c, secret, 'HS512');
}
