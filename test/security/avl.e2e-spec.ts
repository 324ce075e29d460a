/**
 * Catalogue 2.5 (AVL): fail-open versus fail-closed, through the REAL app over HTTP against the
 * in-process simulator's health and token fault switches.
 *
 * Referenced, not duplicated (test/failmode.e2e-spec.ts proves them on every health fault):
 * - AVL-02 failmode closed: "failmode closed (the default)" it.each over every health fault.
 * - AVL-03 failmode open: "failmode open" it.each, and "should let a fail-open session into an
 *   @AllowFailOpen() route with mfa false".
 * - AVL-04 FAIL envelope / invalid_client stays closed: "should still fail closed when Duo answers
 *   the health check with a FAIL envelope" (and CFG-09 in cfg.e2e-spec.ts for a wrong secret).
 * - AVL-05 failures after the redirect always closed: "after the redirect (always closed, in both
 *   modes)" (and TOK-08 in tok.e2e-spec.ts).
 * Not in the catalogue: AVL-06.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { validateEnv } from '../../src/config/env.validation.js';
import { Browser } from '../support/app-harness.js';
import {
  auditEvents,
  JSON_ACCEPT,
  postLikeBrowser,
  signOnToCallback,
  uniqueUser,
} from '../support/duo-flow.js';
import { me, sessionId, type Stack, startStack } from '../support/security-stack.js';

jest.setTimeout(30_000);

const BASE = {
  DUO_CLIENT_ID: 'DIABCDEFGHIJ12345678',
  DUO_CLIENT_SECRET: 'abcdefghijklmnopqrstuvwxyz0123456789ABCD',
  DUO_API_HOST: 'http://127.0.0.1:4000',
};

describe('AVL: MFA provider availability', () => {
  it('AVL-01 should refuse an invalid failmode at start-up and make an absent one closed', () => {
    expect(() => validateEnv({ ...BASE, DUO_FAILMODE: 'opne' })).toThrow(/DUO_FAILMODE/);
    expect(validateEnv(BASE).DUO_FAILMODE).toBe('closed');
  });

  describe('AVL-07 health cache', () => {
    let stack: Stack;
    beforeAll(async () => {
      stack = await startStack({ DUO_FAILMODE: 'open', DUO_HEALTH_CACHE_MS: '60000' });
    });
    afterAll(async () => {
      await stack?.close();
    });

    it('AVL-07 should fail closed when a cached "up" meets a Duo that went down after the redirect', async () => {
      const first = new Browser();
      const ok = await signOnToCallback(first, stack.app.url, uniqueUser('avl07'));
      expect((await first.fetch(ok)).status).toBe(303);
      stack.sim.control.setFaults({ health: 'down', token: '500' });
      try {
        const browser = new Browser();
        const callback = await signOnToCallback(browser, stack.app.url, uniqueUser('avl07'));
        const res = await browser.fetch(callback, { headers: JSON_ACCEPT });
        expect(res.status).toBe(503);
        expect(sessionId(browser)).toBeUndefined();
      } finally {
        stack.sim.control.setFaults({ health: null, token: null });
      }
    });
  });

  describe('AVL-07 / AVL-08 after an outage', () => {
    let stack: Stack;
    beforeAll(async () => {
      stack = await startStack({ DUO_FAILMODE: 'open', DUO_HEALTH_CACHE_MS: '300' });
    });
    afterAll(async () => {
      await stack?.close();
    });

    it('AVL-07 should let a cached "down" expire so the first sign-on after recovery reaches Duo', async () => {
      stack.sim.control.setFaults({ health: 'down' });
      const during = await postLikeBrowser(new Browser(), stack.app.url, '/login', {
        username: uniqueUser('avl07'),
      });
      expect(during.status).toBe(303);
      expect(during.headers.get('location')).not.toContain('/oauth/v1/authorize');
      stack.sim.control.setFaults({ health: null });
      await new Promise((r) => setTimeout(r, 400));
      const after = await postLikeBrowser(new Browser(), stack.app.url, '/login', {
        username: uniqueUser('avl07'),
      });
      expect(after.headers.get('location')).toContain('/oauth/v1/authorize');
    });

    it('AVL-08 should report the degraded sessions and force a real MFA on them once Duo is back', async () => {
      const username = uniqueUser('avl08');
      stack.sim.control.setFaults({ health: 'down' });
      await new Promise((r) => setTimeout(r, 400)); // let the cached "up" expire
      const browser = new Browser();
      const degraded = await postLikeBrowser(browser, stack.app.url, '/login', { username });
      expect(degraded.status).toBe(303);
      expect(degraded.headers.get('location')).not.toContain('/oauth/v1/authorize');
      expect((await me(browser, stack.app.url)).status).toBe(403); // mfa_not_performed
      stack.sim.control.setFaults({ health: null });
      await new Promise((r) => setTimeout(r, 400));
      // The degraded sessions are countable from the audit trail (mfa_failopen rows).
      expect(
        await auditEvents(stack.app, { username, type: 'mfa_failopen' }, { limit: 500 }),
      ).toHaveLength(1);
      const callback = await signOnToCallback(browser, stack.app.url, username);
      expect((await browser.fetch(callback)).status).toBe(303);
      expect((await me(browser, stack.app.url)).body).toMatchObject({ username, mfa: true });
    });
  });
});
