import type { DuoModuleOptions } from '@duo-nest/core';

// One per process for a bare RunningSimulator, so every app of a test shares sessions' signing.
const fallbackSecret = `test-${crypto.randomUUID()}-${crypto.randomUUID()}`;

/** The simulator fields {@link duoTestOptions} reads (a DuoTestSimulator or a RunningSimulator). */
export interface DuoTestSimulatorCredentials {
  url: string;
  clientId: string;
  clientSecret: string;
  /** A DuoTestSimulator's random session secret; a fresh one is made when absent. */
  sessionSecret?: string;
}

/** Overrides of {@link duoTestOptions}: any DuoModule option, plus where the app listens. */
export type DuoTestOptionsOverrides = Partial<DuoModuleOptions> & {
  /**
   * The app's origin (`http://127.0.0.1:3000`): `redirectUri` is this plus `callbackPath`.
   * When the port is not known before the app boots (supertest, `listen(0)`), leave it out:
   * `signInWithDuo` sends Duo's redirect to the app it was given, whatever the origin here.
   * @default 'http://127.0.0.1'
   */
  appUrl?: string;
  /** @default '/auth/duo/callback' */
  callbackPath?: string;
};

/**
 * DuoModule options for an app under test against a simulator: its credentials and URL as
 * `apiHost`, `allowInsecureHttp` (the simulator is plain HTTP on loopback) with cookies without
 * `Secure`, `redirectUri` from the app's URL, the simulator's test session secret, health answers
 * never cached (a fault applies at once) and a 2 s timeout for Duo calls (a hung Duo fails fast).
 * Everything else keeps the library's defaults, the sign-on caps included (5 starts per user and
 * 10 minutes: use more usernames, or `limits`, for longer suites). `overrides` win.
 *
 * @example
 * DuoModule.forRoot(duoTestOptions(sim, { appUrl: 'http://127.0.0.1:3000', failmode: 'open' }))
 */
export function duoTestOptions(
  sim: DuoTestSimulatorCredentials,
  overrides: DuoTestOptionsOverrides = {},
): DuoModuleOptions {
  const { appUrl = 'http://127.0.0.1', callbackPath = '/auth/duo/callback', ...rest } = overrides;
  if (!callbackPath.startsWith('/')) {
    throw new TypeError('callbackPath must start with "/"');
  }
  return {
    clientId: sim.clientId,
    clientSecret: sim.clientSecret,
    apiHost: sim.url,
    redirectUri: `${new URL(appUrl).origin}${callbackPath}`,
    allowInsecureHttp: true,
    secureCookies: false,
    sessionSecret: sim.sessionSecret ?? fallbackSecret,
    healthCacheMs: 0,
    timeoutMs: 2_000,
    ...rest,
  };
}
