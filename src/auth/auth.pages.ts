import { escapeHtml, page } from '@duo-nest/core/internal';

const NOTICES: Record<string, string> = {
  mfa_required: 'Please sign on to open that page.',
  session_expired: 'Your session expired. Please sign on again.',
  mfa_stale: 'That page needs a fresh two-factor authentication. Please sign on again.',
  signed_out: 'You are signed out.',
};

/**
 * The seed's first factor: an HTML form with one field, `username`. `formFields` is the Duo
 * library's hidden CSRF field (`@DuoFormFields()`'s `html`, already escaped).
 */
export function signOnPage(
  returnTo: string | undefined,
  reason: string | undefined,
  formFields: string,
): string {
  const notice =
    reason && NOTICES[reason]
      ? `<p id="notice" class="muted">${escapeHtml(NOTICES[reason])}</p>`
      : '';
  return page(
    'Sign On',
    `<main><h1>Sign On</h1>${notice}
<form id="sign-on" method="post" action="/login">
${formFields}
<label for="username">Username</label><br>
<input id="username" name="username" autocomplete="username" required maxlength="255" autofocus>
${returnTo ? `<input type="hidden" name="returnTo" value="${escapeHtml(returnTo)}">` : ''}
<p><button id="submit" type="submit">Sign On</button></p>
</form>
<p class="muted">Duo's prompt has no Cancel button: if you cannot finish there, come back to this page and sign on again.</p></main>`,
  );
}

/** The seed's "Sign on complete" page: Duo's raw response (token strings redacted), then the claims. */
export function resultPage(username: string, result: unknown, formFields: string): string {
  const r = (result ?? {}) as { rawResponse?: unknown; tokens?: unknown; statusCode?: unknown };
  return page(
    'Sign on complete',
    `<main><h1 id="title">Sign on complete</h1>
<p>Signed on as <strong id="username">${escapeHtml(username)}</strong> (Duo answered ${escapeHtml(r.statusCode ?? '?')}).</p>
<h2>rawResponse</h2><pre id="raw-response">${escapeHtml(JSON.stringify(r.rawResponse ?? null, null, 2))}</pre>
<h2>Verified id_token claims</h2><pre id="tokens">${escapeHtml(JSON.stringify(r.tokens ?? null, null, 2))}</pre>
<form method="post" action="/logout">${formFields}<button id="logout" type="submit">Sign out</button></form></main>`,
    'pre{background:#f4f4f4;padding:1rem;overflow:auto;font-size:.8rem}',
  );
}
