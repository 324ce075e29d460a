import { createHash } from 'node:crypto';

/** Factors offered on the prompt: form value → label and the `auth_context` values it yields. */
export const PROMPT_FACTORS = {
  duo_push: { label: 'Duo Push', factor: 'duo_push', reason: 'user_approved' },
  duo_mobile_passcode: {
    label: 'Duo Mobile passcode',
    factor: 'duo_mobile_passcode',
    reason: 'valid_passcode',
  },
  phone_call: { label: 'Phone call', factor: 'phone_call', reason: 'user_approved' },
  // Duo logs WebAuthn factors as free text (a real 2023 token said "WebAuthn Chrome Touch ID").
  webauthn: { label: 'Security key', factor: 'WebAuthn Security Key', reason: 'user_approved' },
} as const;
export type PromptFactor = keyof typeof PROMPT_FACTORS;

export function isPromptFactor(value: string | undefined): value is PromptFactor {
  return value !== undefined && Object.hasOwn(PROMPT_FACTORS, value);
}

const STYLE = [
  'body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0}',
  'main{max-width:26rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:8px}',
  'h1{font-size:1.2rem}',
  'button{padding:.6rem 1.2rem;margin-right:.5rem;font-size:1rem}',
  '#approve{background:#2b7a3f;color:#fff}',
  '#deny{background:#b3261e;color:#fff}',
  '#fraud{background:#fff;color:#b3261e;border:1px solid #b3261e}',
  '.muted{color:#666;font-size:.9rem}',
].join('');
const STYLE_HASH = createHash('sha256').update(STYLE).digest('base64');

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * A strict CSP: no scripts, no external anything, only our inline style. `form-action` also
 * lists the redirect target, because browsers apply it to the redirect after the form POST.
 */
export function pageCsp(formTargets: readonly string[] = []): string {
  const targets = ["'self'", ...formTargets].join(' ');
  return [
    "default-src 'none'",
    `style-src 'sha256-${STYLE_HASH}'`,
    `form-action ${targets}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ');
}

function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body><main>${body}
<p class="muted">Duo Security (local simulator)</p></main></body></html>`;
}

export interface PromptView {
  applicationName: string;
  username: string;
  transactionId: string;
  /** The factors the application allows (its policy). @default all */
  factors?: readonly PromptFactor[];
}

export function renderPrompt(view: PromptView): string {
  const allowed = view.factors ?? (Object.keys(PROMPT_FACTORS) as PromptFactor[]);
  const options = allowed
    .map((value) => `<option value="${value}">${escapeHtml(PROMPT_FACTORS[value].label)}</option>`)
    .join('');
  return layout(
    'Duo Security',
    `<h1 id="application">${escapeHtml(view.applicationName)}</h1>
<p>Verifying <strong id="username">${escapeHtml(view.username)}</strong></p>
<form id="prompt" method="post" action="/frame/prompt">
<input type="hidden" name="txn" value="${escapeHtml(view.transactionId)}">
<label for="factor">Choose an authentication method</label>
<select id="factor" name="factor">${options}</select>
<p><button id="approve" type="submit" name="action" value="approve">Approve</button>
<button id="deny" type="submit" name="action" value="deny">Deny</button></p>
<p><button id="fraud" type="submit" name="action" value="fraud">Report fraud</button>
<span class="muted">Deny and report this request to your administrator</span></p>
</form>`,
  );
}

export function renderDenied(username: string, reason: string, message: string): string {
  return layout(
    'Access denied',
    `<h1 id="denied" data-reason="${escapeHtml(reason)}">Access denied</h1>
<p>User <strong id="username">${escapeHtml(username)}</strong>: <span id="message">${escapeHtml(message)}</span></p>
<p class="muted">Reason: <code id="reason">${escapeHtml(reason)}</code></p>`,
  );
}

export function renderError(message: string): string {
  return layout(
    'Error',
    `<h1 id="error">Something went wrong</h1><p id="error-message">${escapeHtml(message)}</p>`,
  );
}
