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

/** The seed's "Sign on complete" page: Duo's raw response (token strings redacted), then the claims. */
export function resultPage(
  username: string,
  result: unknown,
  formFields: string,
  language: DuoPageLanguage = ENGLISH,
): string {
  const t = authMessages(language.lang);
  const r = (result ?? {}) as { rawResponse?: unknown; tokens?: unknown; statusCode?: unknown };
  // The username is isolated (<bdi>) and the JSON stays left-to-right on a right-to-left page.
  const signedOnAs = fillTemplate(
    t.signedOnAs,
    {
      username: `<strong id="username"><bdi>${escapeHtml(username)}</bdi></strong>`,
      status: escapeHtml(r.statusCode ?? '?'),
    },
    escapeHtml,
  );
  return page(
    t.resultTitle,
    `<main><h1 id="title">${escapeHtml(t.resultTitle)}</h1>
<p id="signed-on-as">${signedOnAs}</p>
<h2>${escapeHtml(t.rawResponse)}</h2><pre id="raw-response" dir="ltr">${escapeHtml(JSON.stringify(r.rawResponse ?? null, null, 2))}</pre>
<h2>${escapeHtml(t.claims)}</h2><pre id="tokens" dir="ltr">${escapeHtml(JSON.stringify(r.tokens ?? null, null, 2))}</pre>
<form method="post" action="/logout">${formFields}<button id="logout" type="submit">${escapeHtml(t.signOut)}</button></form></main>`,
    'pre{background:#f4f4f4;padding:1rem;overflow:auto;font-size:.8rem}',
    language,
  );
}
