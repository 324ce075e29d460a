/**
 * The audit page for people, rendered on the server: no script, no external asset, every value
 * escaped. The chart is inline SVG (allowed by the pages' strict CSP: it is markup, not a load).
 */
import { escapeHtml as esc, page, showUnsafe } from '@duo-nest/core/internal';
import { AUDIT_EVENT_TYPES, AUDIT_OUTCOMES, type AuditOutcome } from './audit-events.js';
import { auditFilterToParams } from './audit-query.dto.js';
import type { AuditEvent } from './audit-record.js';
import type { AuditFilter, AuditStatsBucket, AuditStatsRow } from './audit.repository.js';

/**
 * Text content of a stored value (never an attribute: it adds markup): escaped for HTML, and its unsafe characters (bidi controls, zero-width and
 * other format characters, separators, lone surrogates...: showUnsafe) are shown as a marked
 * `\u{XXXX}`, so a row stored before the username policy (`alice\u{202E}gnp.exe`) cannot display
 * as another name. `keep` lists characters left as they are (newlines of a `<pre>` block).
 */
function show(value: unknown, keep = ''): string {
  return esc(showUnsafe(String(value), keep)).replace(
    /\\u\{[0-9A-F]{1,6}\}/g,
    (m) => `<span class="esc" title="escaped character">${m}</span>`,
  );
}

const CSS = `body{max-width:78rem;margin:2rem auto}
span.esc{background:#fff3cd;color:#8a4b00;border-radius:.2rem;padding:0 .1rem;font-family:ui-monospace,monospace}
table{border-collapse:collapse;width:100%;font-size:.85rem}th,td{border-bottom:1px solid #ddd;padding:.3rem .4rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.mono,pre,.mono{font-family:ui-monospace,monospace}
form#filters{display:grid;grid-template-columns:repeat(auto-fill,minmax(11rem,1fr));gap:.5rem 1rem;margin:1rem 0;padding:1rem;background:#f8f8f8;border-radius:.4rem}
form#filters label{display:flex;flex-direction:column;font-size:.8rem;color:#444}
form#filters input,form#filters select{font:inherit;padding:.2rem}
.error{background:#fdecea;color:#8a1f11;padding:.6rem 1rem;border-radius:.3rem}
.o-success{color:#1e7b34}.o-failure{color:#b3261e}.o-info{color:#555}
nav.pager{display:flex;gap:1rem;margin:1rem 0}pre{background:#f6f8fa;padding:1rem;overflow:auto;font-size:.8rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;font-size:.9rem}dt{color:#555}dd{margin:0;word-break:break-all}
svg text{font-size:11px;fill:#444;font-family:system-ui,sans-serif}`;

export const OUTCOME_COLORS: Record<AuditOutcome, string> = {
  success: '#2e8b47',
  failure: '#c0392b',
  info: '#8a949c',
};

/** How many buckets the chart shows at most (the newest ones). */
export const CHART_MAX_BUCKETS = 60;

export interface AuditListView {
  /** The query's raw values, to refill the form (also after a bad value). */
  form: Record<string, string>;
  error?: string;
  filter: AuditFilter;
  bucket: AuditStatsBucket;
  limit: number;
  /** Whether this is a later page (a cursor was given). */
  paged: boolean;
  events: AuditEvent[];
  nextCursor: string | null;
  stats: AuditStatsRow[];
  /** The reconcile job's section (reconcile/reconcile-page.ts), already escaped. */
  reconcile?: string;
}

function field(name: string, label: string, value: string | undefined, attrs = ''): string {
  return `<label>${esc(label)}<input name="${name}" id="f-${name}" value="${esc(value ?? '')}" ${attrs}></label>`;
}

function select(
  name: string,
  label: string,
  options: readonly string[],
  value: string | undefined,
  anyLabel?: string,
): string {
  const opts = [
    ...(anyLabel !== undefined ? [`<option value="">${esc(anyLabel)}</option>`] : []),
    ...options.map(
      (o) => `<option value="${esc(o)}"${o === value ? ' selected' : ''}>${esc(o)}</option>`,
    ),
  ];
  return `<label>${esc(label)}<select name="${name}" id="f-${name}">${opts.join('')}</select></label>`;
}

/** datetime-local wants YYYY-MM-DDTHH:mm:ss: show a stored UTC value that way. */
function localValue(form: Record<string, string>, name: 'from' | 'to'): string | undefined {
  const v = form[name];
  return v && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/.test(v) ? v.slice(0, 19) : v;
}

function filtersForm(view: AuditListView): string {
  const f = view.form;
  return `<form id="filters" method="get" action="/audit">
${field('username', 'Username', f.username, 'maxlength="255"')}
${select('type', 'Type', AUDIT_EVENT_TYPES, f.type, 'any')}
${select('outcome', 'Outcome', AUDIT_OUTCOMES, f.outcome, 'any')}
${field('factor', 'Factor', f.factor, 'maxlength="64"')}
${field('reason', 'Reason', f.reason, 'maxlength="64"')}
${field('txid', 'Duo txid', f.txid, 'maxlength="128"')}
${field('ip', 'IP', f.ip, 'maxlength="64"')}
${field('from', 'From (UTC, inclusive)', localValue(f, 'from'), 'type="datetime-local" step="1"')}
${field('to', 'To (UTC, exclusive)', localValue(f, 'to'), 'type="datetime-local" step="1"')}
${select('bucket', 'Chart per', ['hour', 'day'], view.bucket)}
<label>&nbsp;<button type="submit" id="apply">Apply filters</button></label>
<label>&nbsp;<a href="/audit" id="clear">Clear</a></label>
</form>`;
}

function shortTime(iso: string): string {
  return iso.replace('T', ' ').replace(/\.\d{3}Z$/, 'Z');
}

function eventsTable(events: AuditEvent[]): string {
  if (events.length === 0) {
    return '<p id="no-events">No event matches these filters.</p>';
  }
  const rows = events.map(
    (e) => `<tr data-id="${esc(e.id)}">
<td class="mono">${show(shortTime(e.occurredAt))}</td><td>${show(e.type)}</td>
<td class="o-${esc(e.outcome)}">${show(e.outcome)}</td><td>${show(e.username ?? '')}</td>
<td>${show(e.factor ?? '')}</td><td>${show(e.reason ?? '')}</td>
<td class="mono">${show(e.txid ?? '')}</td><td class="mono">${show(e.clientIp ?? '')}</td>
<td><a class="view" href="/audit/view/${esc(encodeURIComponent(e.id))}">details</a></td></tr>`,
  );
  return `<table id="events"><thead><tr><th>Time (UTC)</th><th>Type</th><th>Outcome</th><th>User</th>
<th>Factor</th><th>Reason</th><th>Duo txid</th><th>Client IP</th><th></th></tr></thead>
<tbody>${rows.join('')}</tbody></table>`;
}

function pageHref(view: AuditListView, cursor: string | null): string {
  const params = auditFilterToParams(view.filter);
  params.set('bucket', view.bucket);
  params.set('limit', String(view.limit));
  if (cursor) {
    params.set('cursor', cursor);
  }
  return `/audit?${params.toString()}`;
}

/** Stacked bars of outcomes per bucket, newest CHART_MAX_BUCKETS buckets. */
export function outcomeChart(stats: AuditStatsRow[], bucket: AuditStatsBucket): string {
  const rows = stats.slice(-CHART_MAX_BUCKETS);
  const width = 760;
  const height = 240;
  const left = 44;
  const right = 12;
  const top = 28;
  const bottom = 36;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const max = Math.max(1, ...rows.map((r) => r.total));
  const slot = plotW / Math.max(rows.length, 1);
  const barW = Math.max(2, Math.min(40, slot * 0.7));
  const label = (iso: string) => (bucket === 'hour' ? iso.slice(0, 13) + ':00' : iso.slice(0, 10));
  const parts: string[] = [];
  rows.forEach((r, i) => {
    let y = top + plotH;
    const x = left + i * slot + (slot - barW) / 2;
    for (const outcome of AUDIT_OUTCOMES) {
      const n = r.byOutcome[outcome] ?? 0;
      if (n === 0) {
        continue;
      }
      const h = (n / max) * plotH;
      y -= h;
      parts.push(
        `<rect class="bar bar-${outcome}" data-bucket="${esc(r.bucket)}" data-count="${n}" x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${barW.toFixed(1)}" height="${h.toFixed(1)}" fill="${OUTCOME_COLORS[outcome]}"><title>${esc(`${label(r.bucket)} ${outcome}: ${n}`)}</title></rect>`,
      );
    }
  });
  const axis = `<line x1="${left}" y1="${top + plotH}" x2="${width - right}" y2="${top + plotH}" stroke="#999"/>
<line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotH}" stroke="#999"/>
<text x="${left - 6}" y="${top + 4}" text-anchor="end">${max}</text>
<text x="${left - 6}" y="${top + plotH}" text-anchor="end">0</text>`;
  // Few bars: each gets its label; many: the first and the last.
  const labelled = rows.length <= 8 ? rows.map((_, i) => i) : [0, rows.length - 1];
  const xLabels =
    rows.length === 0
      ? `<text x="${left + plotW / 2}" y="${top + plotH / 2}" text-anchor="middle">No events</text>`
      : labelled
          .map(
            (i) =>
              `<text class="x-label" x="${(left + i * slot + slot / 2).toFixed(1)}" y="${height - 14}" text-anchor="middle">${esc(label(rows[i].bucket))}</text>`,
          )
          .join('');
  const legend = AUDIT_OUTCOMES.map(
    (o, i) =>
      `<rect x="${left + i * 90}" y="6" width="10" height="10" fill="${OUTCOME_COLORS[o]}"/><text x="${left + i * 90 + 14}" y="15">${o}</text>`,
  ).join('');
  const total = rows.reduce((n, r) => n + r.total, 0);
  return `<svg id="chart" xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" aria-label="${esc(`Outcomes per ${bucket}: ${total} events in ${rows.length} buckets`)}">
${legend}${axis}${parts.join('')}${xLabels}</svg>`;
}

export function auditListPage(view: AuditListView): string {
  const exportParams = auditFilterToParams(view.filter).toString();
  const sep = exportParams ? '&' : '';
  const truncated =
    view.stats.length > CHART_MAX_BUCKETS
      ? `<p class="muted">The chart shows the newest ${CHART_MAX_BUCKETS} of ${view.stats.length} ${view.bucket}s; narrow the time range to see others.</p>`
      : '';
  const body = view.error
    ? `<p class="error" id="error" role="alert">${esc(view.error)}</p>`
    : `<section><h2>Outcomes per ${esc(view.bucket)}</h2>${outcomeChart(view.stats, view.bucket)}${truncated}</section>
<section><h2>Events${view.paged ? ' (older page)' : ''}</h2>
<p class="muted">Newest first. Export these filters as <a id="export-csv" href="/audit/export?format=csv${sep}${esc(exportParams)}">CSV</a>
or <a id="export-ndjson" href="/audit/export?format=ndjson${sep}${esc(exportParams)}">NDJSON</a>.</p>
${eventsTable(view.events)}
<nav class="pager">${view.paged ? `<a id="first" href="${esc(pageHref(view, null))}">Newest events</a>` : ''}
${view.nextCursor ? `<a id="next" href="${esc(pageHref(view, view.nextCursor))}">Older events</a>` : '<span id="end" class="muted">End of the trail for these filters.</span>'}</nav></section>`;
  return page(
    'Audit trail',
    `<main><h1 id="title">Audit trail</h1><p><a id="sessions-link" href="/audit/sessions">User sessions</a>: list, revoke, mark compromised.</p>${filtersForm(view)}${body}${view.reconcile ?? ''}</main>`,
    CSS,
  );
}

const DETAIL_FIELDS: [keyof AuditEvent, string][] = [
  ['id', 'Event id'],
  ['seq', 'Sequence'],
  ['occurredAt', 'Occurred at (UTC)'],
  ['type', 'Type'],
  ['outcome', 'Outcome'],
  ['username', 'Username'],
  ['reason', 'Reason'],
  ['txid', 'Duo txid'],
  ['factor', 'Factor'],
  ['duoResult', 'Duo result'],
  ['duoReason', 'Duo reason'],
  ['duoStatus', 'Duo status'],
  ['authDeviceIp', 'Auth device IP'],
  ['authDeviceName', 'Auth device'],
  ['authDeviceLocation', 'Auth device location'],
  ['accessDeviceIp', 'Access device IP'],
  ['accessDeviceLocation', 'Access device location'],
  ['application', 'Application'],
  ['groups', 'Duo groups'],
  ['clientIp', 'Client IP'],
  ['userAgent', 'User agent'],
  ['correlationId', 'Correlation id'],
  ['instanceId', 'Instance'],
  ['prevHash', 'Previous hash'],
  ['hash', 'Hash'],
];

export function auditEventPage(event: AuditEvent): string {
  const rows = DETAIL_FIELDS.map(([key, label]) => {
    const value = event[key];
    const text = Array.isArray(value) ? value.join(', ') : (value ?? '');
    return `<dt>${esc(label)}</dt><dd id="d-${key}">${show(text)}</dd>`;
  }).join('');
  const json = (v: unknown) => (v ? JSON.stringify(v, null, 2) : '(none)');
  return page(
    `Audit event ${event.seq}`,
    `<main><p><a id="back" href="/audit">&larr; Audit trail</a></p>
<h1 id="title">Event ${esc(event.seq)}: ${show(event.type)}</h1><dl id="fields">${rows}</dl>
<h2>Duo auth_context</h2><pre id="auth-context">${show(json(event.authContext), '\n')}</pre>
<h2>Detail</h2><pre id="detail">${show(json(event.detail), '\n')}</pre></main>`,
    CSS,
  );
}

export function auditMessagePage(title: string, message: string): string {
  return page(
    title,
    `<main><h1 id="title">${esc(title)}</h1><p class="error" id="error">${esc(message)}</p><p><a id="back" href="/audit">Audit trail</a></p></main>`,
    CSS,
  );
}
