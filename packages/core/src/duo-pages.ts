/** The few HTML pages the library itself serves: button page, unavailable, and error pages. */
import { duoPageMessages, fillTemplate, type DuoPageLanguage } from './duo-i18n.js';

const ENGLISH: DuoPageLanguage = { lang: 'en', dir: 'ltr' };
const LANG_RE = /^[a-z]{2,8}(?:-[A-Za-z0-9]{1,8})*$/;

export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const BASE_CSS = `body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}
.duo-button{display:inline-block;padding:.75rem 1.5rem;background:#6bbf4e;color:#fff;border-radius:.4rem;text-decoration:none;font-weight:600}
.muted{color:#666;font-size:.9rem}a.restart{display:inline-block;margin-top:1rem}`;

/**
 * The pages' CSP: no scripts at all, inline styles only, no framing. Forms may post to this origin
 * and, where a form's answer redirects to Duo (the sign-on form), to Duo's origin: Chromium applies
 * form-action to the redirect too.
 */
export function pageCsp(duoOrigin?: string): string {
  const formAction = duoOrigin ? `'self' ${duoOrigin}` : "'self'";
  return `default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action ${formAction}; frame-ancestors 'none'; base-uri 'none'`;
}

export const PAGE_CSP = pageCsp();

/**
 * A whole page. `language` sets `<html lang dir>` (a tag that is not a language tag falls back to
 * English, so no option can break out of the attribute).
 */
export function page(
  title: string,
  body: string,
  css = '',
  language: DuoPageLanguage = ENGLISH,
): string {
  const lang = LANG_RE.test(language.lang) ? language.lang : 'en';
  const dir = language.dir === 'rtl' ? ' dir="rtl"' : '';
  return `<!doctype html><html lang="${lang}"${dir}><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(title)}</title><style>${BASE_CSS}${css}</style></head><body>${body}</body></html>`;
}

/**
 * The "Sign on with Duo" page in `language`. The app's `displayName` (when it set one) wins over
 * the catalogue's button text; the username is isolated (`<bdi>`) so a right-to-left name cannot
 * reorder the sentence around it.
 */
export function buttonPage(input: {
  authorizeUrl: string;
  username: string;
  /** The app's button text; undefined: the catalogue's. */
  displayName?: string;
  css: string;
  showPoweredBy: boolean;
  language?: DuoPageLanguage;
}): string {
  const language = input.language ?? ENGLISH;
  const t = duoPageMessages(language.lang);
  const explain = fillTemplate(
    t.buttonExplain,
    {
      username: `<strong id="username"><bdi>${escapeHtml(input.username)}</bdi></strong>`,
      signOnLink: `<a href="/">${escapeHtml(t.signOnLink)}</a>`,
    },
    escapeHtml,
  );
  return page(
    input.displayName ?? t.buttonTitle,
    `<main><h1>${escapeHtml(t.buttonHeading)}</h1>
<p id="explain">${explain}</p>
<p><a id="duo-button" class="duo-button" href="${escapeHtml(input.authorizeUrl)}">${escapeHtml(input.displayName ?? t.buttonText)}</a></p>
${input.showPoweredBy ? `<p id="powered-by" class="muted">${escapeHtml(t.poweredBy)}</p>` : ''}</main>`,
    input.css,
    language,
  );
}

export function messagePage(
  title: string,
  message: string,
  restartPath = '/',
  language: DuoPageLanguage = ENGLISH,
): string {
  const t = duoPageMessages(language.lang);
  return page(
    title,
    `<main><h1 id="title">${escapeHtml(title)}</h1><p id="message">${escapeHtml(message)}</p>
<a class="restart" id="restart" href="${escapeHtml(restartPath)}">${escapeHtml(t.restart)}</a></main>`,
    '',
    language,
  );
}
