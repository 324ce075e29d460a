/** The few HTML pages the library itself serves: button page, unavailable, and error pages. */

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

export function page(title: string, body: string, css = ''): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(title)}</title><style>${BASE_CSS}${css}</style></head><body>${body}</body></html>`;
}

export function buttonPage(input: {
  authorizeUrl: string;
  username: string;
  displayName: string;
  css: string;
  showPoweredBy: boolean;
}): string {
  return page(
    'Sign on with Duo',
    `<main><h1>Two-factor authentication</h1>
<p id="explain">Signing on as <strong id="username">${escapeHtml(input.username)}</strong>. Next, Duo will ask you to approve
this sign-on (for example with Duo Push). Duo's page has no way back here: if you cannot complete it, return to the
<a href="/">sign-on page</a> and start again.</p>
<p><a id="duo-button" class="duo-button" href="${escapeHtml(input.authorizeUrl)}">${escapeHtml(input.displayName)}</a></p>
${input.showPoweredBy ? '<p id="powered-by" class="muted">Powered by Duo</p>' : ''}</main>`,
    input.css,
  );
}

export function messagePage(title: string, message: string, restartPath = '/'): string {
  return page(
    title,
    `<main><h1 id="title">${escapeHtml(title)}</h1><p id="message">${escapeHtml(message)}</p>
<a class="restart" id="restart" href="${escapeHtml(restartPath)}">Start a new sign-on</a></main>`,
  );
}
