import { escapeHtml, fillTemplate, page, type DuoPageLanguage } from '@duo-nest/core/internal';
import { authMessages } from './auth.i18n.js';

const ENGLISH: DuoPageLanguage = { lang: 'en', dir: 'ltr' };

/**
 * The seed's first factor: an HTML form with one field, `username`. `formFields` is the Duo
 * library's hidden CSRF field (`@DuoFormFields()`'s `html`, already escaped).
 */
export function signOnPage(
  returnTo: string | undefined,
  reason: string | undefined,
  formFields: string,
  language: DuoPageLanguage = ENGLISH,
): string {
  const t = authMessages(language.lang);
  const text = reason && Object.hasOwn(t.notices, reason) ? t.notices[reason as 'signed_out'] : '';
  const notice = text ? `<p id="notice" class="muted">${escapeHtml(text)}</p>` : '';
  return page(
    t.signOnTitle,
    `<main><h1>${escapeHtml(t.signOnTitle)}</h1>${notice}
<form id="sign-on" method="post" action="/login">
${formFields}
<label for="username">${escapeHtml(t.usernameLabel)}</label><br>
<input id="username" name="username" autocomplete="username" required maxlength="255" autofocus dir="auto">
${returnTo ? `<input type="hidden" name="returnTo" value="${escapeHtml(returnTo)}">` : ''}
<p><button id="submit" type="submit">${escapeHtml(t.submit)}</button></p>
</form>
<p class="muted" id="no-cancel">${escapeHtml(t.noCancel)}</p></main>`,
    '',
    language,
  );
}

/** The demo's other pages, linked from the result page (each says what it demonstrates). */
const DEMO_LINKS = [
  ['me', '/me'],
  ['status', '/status'],
  ['stepUp', '/step-up'],
  ['admin', '/admin'],
  ['audit', '/audit'],
] as const;

/**
 * Splits Duo's MFA result (as the session keeps it: token strings already redacted) into Duo's
 * token response (status, headers and the token endpoint's fields) and the verified id_token's
 * claims. `tokens` merges both, so every field of the token response is left out of the claims.
 */
export function splitResult(result: unknown): {
  statusCode: unknown;
  tokenResponse: Record<string, unknown>;
  claims: Record<string, unknown>;
} {
  const r = (result ?? {}) as {
    rawResponse?: Record<string, unknown>;
    tokens?: Record<string, unknown>;
    statusCode?: unknown;
    headers?: unknown;
  };
  const raw = r.rawResponse ?? {};
  const claims: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(r.tokens ?? {})) {
    // The token endpoint's fields (access_token, id_token, expires_in, token_type, ...) are not claims.
    if (!Object.hasOwn(raw, key) && key !== 'access_token' && key !== 'id_token') {
      claims[key] = value;
    }
  }
  return {
    statusCode: r.statusCode,
    tokenResponse: { statusCode: r.statusCode ?? null, headers: r.headers ?? {}, ...raw },
    claims,
  };
}

/**
 * The seed's "Sign on complete" page: Duo's token response (token strings redacted), then the
 * verified id_token claims under their own heading, then links to the demo's other pages.
 */
export function resultPage(
  username: string,
  result: unknown,
  formFields: string,
  language: DuoPageLanguage = ENGLISH,
): string {
  const t = authMessages(language.lang);
  const { statusCode, tokenResponse, claims } = splitResult(result);
  // The username is isolated (<bdi>) and the JSON stays left-to-right on a right-to-left page.
  const signedOnAs = fillTemplate(
    t.signedOnAs,
    {
      username: `<strong id="username"><bdi>${escapeHtml(username)}</bdi></strong>`,
      status: escapeHtml(statusCode ?? '?'),
    },
    escapeHtml,
  );
  const links = DEMO_LINKS.map(
    ([key, href]) => `<li><a id="link-${key}" href="${href}">${escapeHtml(t.links[key])}</a></li>`,
  ).join('');
  return page(
    t.resultTitle,
    `<main><h1 id="title">${escapeHtml(t.resultTitle)}</h1>
<p id="signed-on-as">${signedOnAs}</p>
<h2 id="claims-heading">${escapeHtml(t.claims)}</h2><pre id="claims" dir="ltr">${escapeHtml(JSON.stringify(claims, null, 2))}</pre>
<h2 id="token-response-heading">${escapeHtml(t.tokenResponse)}</h2><pre id="raw-response" dir="ltr">${escapeHtml(JSON.stringify(tokenResponse, null, 2))}</pre>
<nav id="demo-pages" aria-labelledby="demo-pages-heading"><h2 id="demo-pages-heading">${escapeHtml(t.demoPages)}</h2><ul>${links}</ul></nav>
<form method="post" action="/logout">${formFields}<button id="logout" type="submit">${escapeHtml(t.signOut)}</button></form></main>`,
    'pre{background:#f4f4f4;padding:1rem;overflow:auto;font-size:.8rem}',
    language,
  );
}
