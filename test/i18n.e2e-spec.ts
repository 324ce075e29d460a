import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { Browser as Chromium } from 'playwright-core';
import { negotiateLocale, PAGE_CSP, pageCsp } from '@duo-nest/core/internal';
import type { RunningSimulator } from '@duo-nest/simulator';
import {
  Browser,
  location,
  simulatorEnv,
  startApp,
  type RunningApp,
} from './support/app-harness.js';
import { postLikeBrowser, signOn, uniqueUser } from './support/duo-flow.js';
import { launchChromium, screenshotter } from './support/browser.js';
import { startSimAndApp, type SimAndApp } from './support/sim-and-app.js';

// Item 3 of [reach]: the app's pages (sign-on form, button page, message/error page, result page)
// in English, German and (partial, right-to-left) Arabic, chosen by Accept-Language or fixed by
// APP_LOCALE, through HTTP; one page in Chromium.
let sim: RunningSimulator;
let app: RunningApp; // button page, catalogue button text, locales en,de,ar
let booted: SimAndApp;
let branded: RunningApp; // the app's own button text and CSS
let fixed: RunningApp; // APP_LOCALE=de
let direct: RunningApp; // straight to Duo (no button page), locales en,de,ar
let chromium: Chromium;
const shot = screenshotter('i18n');
jest.setTimeout(30_000);

beforeAll(async () => {
  booted = await startSimAndApp({
    env: { DUO_SKIP_BUTTON_PRESS: 'false', APP_LOCALES: 'en,de,ar' },
  });
  ({ sim, app } = booted);
  const env = { ...simulatorEnv(sim), DUO_SKIP_BUTTON_PRESS: 'false', APP_LOCALES: 'en,de,ar' };
  branded = await startApp({
    ...env,
    DUO_BUTTON_DISPLAY_NAME: 'Weiter mit ACME',
    DUO_BUTTON_CSS: '.duo-button{background:rgb(1, 2, 3)}',
  });
  fixed = await startApp({ ...simulatorEnv(sim), APP_LOCALE: 'de' });
  direct = await startApp({ ...simulatorEnv(sim), APP_LOCALES: 'en,de,ar' });
  chromium = await launchChromium();
}, 30_000);

afterAll(async () => {
  await chromium?.close();
  await branded?.close();
  await fixed?.close();
  await direct?.close();
  await booted?.close();
});

interface Expectation {
  header: string;
  lang: string;
  dir?: 'rtl';
  text: string;
}

const LANGS: Record<'en' | 'de' | 'ar', Omit<Expectation, 'text'>> = {
  en: { header: 'en-US,en;q=0.9', lang: 'en' },
  de: { header: 'de-DE,de;q=0.9,en;q=0.5', lang: 'de' },
  ar: { header: 'ar-EG, en;q=0.3', lang: 'ar', dir: 'rtl' },
};

/** The language contract of one HTML page. */
async function expectPage(res: Response, want: Expectation, csp: string): Promise<string> {
  const html = await res.text();
  expect(res.headers.get('content-type')).toMatch(/text\/html/);
  expect(res.headers.get('content-language')).toBe(want.lang);
  expect(res.headers.get('vary') ?? '').toMatch(/Accept-Language/i);
  expect(res.headers.get('content-security-policy')).toBe(csp);
  const htmlTag = /<html[^>]*>/.exec(html)![0];
  expect(htmlTag).toContain(`lang="${want.lang}"`);
  if (want.dir) {
    expect(htmlTag).toContain(`dir="${want.dir}"`);
  } else {
    expect(htmlTag).not.toContain('dir=');
  }
  expect(html).toContain(want.text);
  // No script on any page, in any language.
  expect(html).not.toMatch(/<script/i);
  return html;
}

describe('the sign-on form', () => {
  it.each([
    ['en', 'Username'],
    ['de', 'Benutzername'],
    ['ar', 'اسم المستخدم'],
  ] as const)('should be in %s', async (lang, text) => {
    const res = await new Browser().fetch(`${app.url}/`, {
      headers: { accept: 'text/html', 'accept-language': LANGS[lang].header },
    });
    await expectPage(res, { ...LANGS[lang], text }, pageCsp(sim.url));
  });

  it('should translate the notice of a reason', async () => {
    const res = await new Browser().fetch(`${app.url}/?reason=signed_out`, {
      headers: { accept: 'text/html', 'accept-language': 'de' },
    });
    expect(await res.text()).toContain('Sie sind abgemeldet.');
  });
});

describe('the button page', () => {
  it.each([
    ['en', 'Two-factor authentication', 'Sign on with Duo'],
    ['de', 'Zwei-Faktor-Authentifizierung', 'Mit Duo anmelden'],
    ['ar', 'المصادقة الثنائية', 'Sign on with Duo'],
  ] as const)('should be in %s with the catalogue button text', async (lang, heading, button) => {
    const headers = { 'accept-language': LANGS[lang].header };
    const res = await postLikeBrowser(
      new Browser(),
      app.url,
      '/login',
      { username: 'bob' },
      headers,
    );
    expect(res.status).toBe(200);
    const html = await expectPage(res, { ...LANGS[lang], text: heading }, PAGE_CSP);
    expect(html).toMatch(new RegExp(`id="duo-button"[^>]*>${button}</a>`));
  });

  it('should let the display name and CSS options win over the catalogue', async () => {
    const headers = { 'accept-language': 'de' };
    const res = await postLikeBrowser(
      new Browser(),
      branded.url,
      '/login',
      { username: 'bob' },
      headers,
    );
    const html = await expectPage(
      res,
      { ...LANGS.de, text: 'Zwei-Faktor-Authentifizierung' },
      PAGE_CSP,
    );
    expect(html).toMatch(/id="duo-button"[^>]*>Weiter mit ACME<\/a>/);
    expect(html).not.toContain('Mit Duo anmelden');
    expect(html).toContain('.duo-button{background:rgb(1, 2, 3)}');
  });

  it('should escape and isolate a right-to-left or markup username on a right-to-left page', async () => {
    const username = 'אבג<b>x</b>';
    const headers = { 'accept-language': 'ar' };
    const res = await postLikeBrowser(new Browser(), app.url, '/login', { username }, headers);
    const html = await expectPage(res, { ...LANGS.ar, text: 'المصادقة الثنائية' }, PAGE_CSP);
    expect(html).toContain('<bdi>אבג&#60;b&#62;x&#60;/b&#62;</bdi>');
    expect(html).not.toContain('<b>x');
  });
});

describe('the message (error) page', () => {
  const badCallback = `/auth/duo/callback?state=${'s'.repeat(36)}&duo_code=abc`;
  it.each([
    ['en', 'This sign-on is unknown or was already used; start again', 'Start a new sign-on'],
    ['de', 'Diese Anmeldung ist unbekannt oder wurde schon verwendet', 'Neue Anmeldung beginnen'],
    ['ar', 'This sign-on is unknown or was already used; start again', 'ابدأ تسجيل دخول جديد'],
  ] as const)('should be in %s', async (lang, message, restart) => {
    const res = await new Browser().fetch(`${app.url}${badCallback}`, {
      headers: { accept: 'text/html', 'accept-language': LANGS[lang].header },
    });
    expect(res.status).toBe(400);
    const html = await expectPage(res, { ...LANGS[lang], text: message }, PAGE_CSP);
    expect(html).toContain(restart);
  });

  it('should translate a cap refusal with its seconds (429)', async () => {
    const capped = await startApp({ ...simulatorEnv(sim), RATE_LIMIT_CALLBACK_PER_IP: '1' });
    try {
      const get = () =>
        new Browser().fetch(`${capped.url}${badCallback}`, {
          headers: { accept: 'text/html', 'accept-language': 'de' },
        });
      await (await get()).arrayBuffer();
      const res = await get();
      expect(res.status).toBe(429);
      const html = await expectPage(res, { ...LANGS.de, text: 'Zu viele Versuche' }, PAGE_CSP);
      expect(html).toMatch(/versuchen Sie es in \d+ Sekunden erneut/);
    } finally {
      await capped.close();
    }
  });

  it('should keep the JSON answer language-neutral (stable code, English message)', async () => {
    const res = await new Browser().fetch(`${app.url}${badCallback}`, {
      headers: { accept: 'application/json', 'accept-language': 'de' },
    });
    expect(await res.json()).toMatchObject({
      error: 'state_unknown',
      message: expect.stringMatching(/^This sign-on/),
    });
  });
});

describe('the result page', () => {
  it.each([
    ['en', 'Sign on complete'],
    ['de', 'Anmeldung abgeschlossen'],
    ['ar', 'Sign on complete'],
  ] as const)('should be in %s', async (lang, title) => {
    const browser = new Browser();
    const username = uniqueUser('i18n');
    const done = await signOn(browser, direct.url, username);
    expect(location(done)).toBe('/result');
    const res = await browser.fetch(`${direct.url}/result`, {
      headers: { accept: 'text/html', 'accept-language': LANGS[lang].header },
    });
    const html = await expectPage(res, { ...LANGS[lang], text: title }, PAGE_CSP);
    expect(html).toContain(`<bdi>${username}</bdi>`);
    expect(html).toContain('<pre id="raw-response" dir="ltr">');
  });
});

describe('language choice', () => {
  it.each([
    ['fr;q=1, de;q=0.8, en;q=0.5', 'de'],
    ['en;q=0.2, de-AT;q=0.9', 'de'],
    ['DE-ch', 'de'],
    ['de;q=0, en', 'en'],
    ['*', 'en'],
    ['xx, yy', 'en'],
    ['', 'en'],
    ['de;q=abc, ;;, =,', 'de'],
    [`${'x'.repeat(2000)}, de`, 'en'],
  ])('should pick the right language from Accept-Language (case %#)', (header, want) => {
    expect(negotiateLocale(header, ['en', 'de'], 'en')).toBe(want);
  });

  it('should never offer a language the app did not list (ar is opt-in)', async () => {
    const res = await new Browser().fetch(`${fixed.url.replace(/\/$/, '')}/`, {
      headers: { accept: 'text/html', 'accept-language': 'ar' },
    });
    expect(res.headers.get('content-language')).toBe('de');
  });

  it('should use APP_LOCALE for every request, whatever Accept-Language says', async () => {
    const res = await new Browser().fetch(`${fixed.url}/`, {
      headers: { accept: 'text/html', 'accept-language': 'en-US' },
    });
    expect(res.headers.get('content-language')).toBe('de');
    // A fixed language does not depend on the header.
    expect(res.headers.get('vary') ?? '').not.toMatch(/Accept-Language/i);
    expect(await res.text()).toContain('<html lang="de">');
  });
});

describe('in Chromium', () => {
  it('should show the button page in German, and the right-to-left page laid out right to left', async () => {
    for (const [locale, lang] of [
      ['de-DE', 'de'],
      ['ar-EG', 'ar'],
    ] as const) {
      const context = await chromium.newContext({ locale });
      const page = await context.newPage();
      await page.goto(`${branded.url}/`);
      await page.fill('#username', 'bob');
      await Promise.all([page.waitForURL(`${branded.url}/login`), page.click('#submit')]);
      await expect(page.evaluate('document.documentElement.lang')).resolves.toBe(lang);
      await expect(page.evaluate('getComputedStyle(document.body).direction')).resolves.toBe(
        lang === 'ar' ? 'rtl' : 'ltr',
      );
      await expect(page.textContent('#duo-button')).resolves.toBe('Weiter mit ACME');
      const color = await page.evaluate(
        "getComputedStyle(document.querySelector('#duo-button')).backgroundColor",
      );
      expect(color).toBe('rgb(1, 2, 3)');
      await shot(page, `button-page-${lang}`);
      await context.close();
    }
  });
});
