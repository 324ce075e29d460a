/**
 * The session-control page of the audit admins: a user's live sessions (created, last seen, IP,
 * factor, application), each with a Revoke button, and buttons to revoke all of them or to mark
 * the user compromised. Server-rendered, no script; every form posts with the CSRF field.
 */
import type { SessionSummary } from '@duo-nest/core';
import { escapeHtml as esc, page, showUnsafe } from '@duo-nest/core/internal';

/** What the last action did, shown above the list (from the `done` query value). */
export const SESSION_PAGE_NOTICES = {
  revoked: 'The session was revoked.',
  'revoked-all': 'All sessions of this user were revoked.',
  compromised: 'The user was marked compromised: all their sessions were revoked.',
  not_found: 'No such session (already ended or expired).',
} as const;

export type SessionPageNotice = keyof typeof SESSION_PAGE_NOTICES;

export interface SessionsPageView {
  /** The user asked for, or undefined when the form is still empty. */
  username?: string;
  sessions: SessionSummary[];
  /** The hidden `_csrf` field (DuoFormFieldsValue.html). */
  csrfField: string;
  notice?: SessionPageNotice;
  error?: string;
}

const CSS = `body{max-width:78rem;margin:2rem auto}
table{border-collapse:collapse;width:100%;font-size:.85rem}th,td{border-bottom:1px solid #ddd;padding:.3rem .4rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}.mono{font-family:ui-monospace,monospace}
form.inline{display:inline}form#lookup{margin:1rem 0;padding:1rem;background:#f8f8f8;border-radius:.4rem}
button.danger{background:#b3261e;color:#fff;border:0;padding:.3rem .8rem;border-radius:.3rem}
.notice{background:#e6f4ea;color:#1e4620;padding:.6rem 1rem;border-radius:.3rem}
.error{background:#fdecea;color:#8a1f11;padding:.6rem 1rem;border-radius:.3rem}
nav.actions{display:flex;gap:1rem;margin:1rem 0}`;

function show(value: unknown): string {
  return esc(showUnsafe(typeof value === 'string' ? value : ''));
}

function time(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d{3}Z$/, 'Z');
}

/** The path of a user's session routes (the username percent-encoded as one segment). */
export function userSessionsPath(username: string): string {
  return `/audit/users/${encodeURIComponent(username)}`;
}

function sessionRows(view: SessionsPageView, username: string): string {
  if (view.sessions.length === 0) {
    return '<p id="no-sessions">This user has no live session.</p>';
  }
  const base = userSessionsPath(username);
  const rows = view.sessions.map((s) => {
    const how = s.failOpen ? 'fail-open (no MFA)' : (s.factor ?? '');
    return `<tr data-handle="${esc(s.handle)}">
<td class="mono">${show(time(s.createdAt))}</td><td class="mono">${show(time(s.lastSeenAt))}</td>
<td class="mono">${show(s.clientIp)}</td><td>${show(how)}</td><td>${show(s.application)}</td>
<td>${show(s.userAgent)}</td>
<td><form class="inline revoke" method="post" action="${esc(`${base}/sessions/${encodeURIComponent(s.handle)}/revoke`)}">${view.csrfField}<button type="submit" class="danger">Revoke</button></form></td></tr>`;
  });
  return `<table id="sessions"><thead><tr><th>Created (UTC)</th><th>Last seen (UTC)</th><th>IP</th>
<th>Factor</th><th>Application</th><th>User agent</th><th></th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

export function auditSessionsPage(view: SessionsPageView): string {
  const username = view.username;
  const lookup = `<form id="lookup" method="get" action="/audit/sessions"><label>Username
<input name="username" id="f-username" maxlength="255" value="${esc(username ?? '')}"></label>
<button type="submit" id="show">Show sessions</button></form>`;
  const notice = view.notice
    ? `<p class="notice" id="notice" role="status">${esc(SESSION_PAGE_NOTICES[view.notice])}</p>`
    : '';
  const error = view.error ? `<p class="error" id="error" role="alert">${esc(view.error)}</p>` : '';
  const body =
    username === undefined || view.error
      ? ''
      : `<section><h2>Live sessions of <span id="user">${show(username)}</span></h2>
${sessionRows(view, username)}
<nav class="actions">
<form class="inline" id="revoke-all" method="post" action="${esc(`${userSessionsPath(username)}/sessions/revoke-all`)}">${view.csrfField}<button type="submit" class="danger">Revoke all sessions</button></form>
<form class="inline" id="compromised" method="post" action="${esc(`${userSessionsPath(username)}/compromised`)}">${view.csrfField}<button type="submit" class="danger">Mark user compromised</button></form>
</nav>
<p class="muted">Marking a user compromised ends every session of theirs on every instance and is
recorded; it does not block new sign-ons: disable the user in Duo for that.</p></section>`;
  return page(
    'Sessions',
    `<main><p><a id="back" href="/audit">&larr; Audit trail</a></p><h1 id="title">User sessions</h1>
${lookup}${notice}${error}${body}</main>`,
    CSS,
  );
}
