import { escapeHtml as esc } from '@duo-nest/core/internal';
import type { ReconcileRunResult } from './reconcile.job.js';
import type { ReconcileStatusSource } from './reconcile.scheduler.js';

/**
 * The audit page's read-only section on the reconcile job: on or off, the cursor, the last run
 * (from the database, so any instance shows the last run of whichever instance held the lock) and
 * its counts. Every value is escaped.
 */
export async function reconcileSection(source: ReconcileStatusSource | undefined): Promise<string> {
  if (!source?.enabled || !source.job) {
    return `<section id="reconcile"><h2>Reconcile with Duo's log</h2><p class="muted" id="reconcile-off">Off: set DUO_ADMIN_INTEGRATION_KEY, DUO_ADMIN_SECRET_KEY and DUO_ADMIN_API_HOST (and DUO_RECONCILE_INTERVAL_MS &gt; 0) to turn it on.</p></section>`;
  }
  let last: ReconcileRunResult | null = null;
  let cursorText = 'none yet';
  try {
    last = await source.job.lastRecordedRun();
    const c = await source.job.cursorView();
    if (c) {
      cursorText = `window ${c.windowMin} – ${c.windowMax}, phase ${c.phase}${c.nextOffset ? `, next_offset ${c.nextOffset[0]}/${c.nextOffset[1]}` : ''}`;
    }
  } catch {
    cursorText = 'unavailable (database)';
  }
  const rows: [string, string][] = [
    ['Interval', `${Math.round(source.intervalMs / 1000)} s`],
    ['Cursor', cursorText],
  ];
  if (last) {
    rows.push(
      ['Last run', `${last.startedAt}: ${last.status}${last.error ? ` (${last.error})` : ''}`],
      ['Pages / entries read', `${last.pages} / ${last.entries}`],
      ...Object.entries(last.events).map(([k, v]): [string, string] => [k, String(v)]),
      ['Sessions revoked', String(last.revoked)],
    );
  } else {
    rows.push(['Last run', 'none yet']);
  }
  return `<section id="reconcile"><h2>Reconcile with Duo's log</h2><table id="reconcile-status"><tbody>${rows
    .map(([k, v]) => `<tr><th scope="row">${esc(k)}</th><td>${esc(v)}</td></tr>`)
    .join('')}</tbody></table></section>`;
}
