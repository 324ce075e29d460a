import { describe, expect, it } from '@jest/globals';
import { showUnsafe } from '@duo-nest/core/internal';
import { csvCell, csvLine } from './audit-export.js';
import { auditEventPage, auditListPage } from './audit-page.js';
import type { AuditEvent } from './audit-record.js';

// Issue 11 item 4: rows stored before the username policy (or by any other path) must never show
// a dangerous character raw on the audit page or in the CSV export.
const SPOOFS = [
  'alice\u202egnp.exe',
  'al\u2066ice\u2069',
  'ali\u200bce',
  'alice\u2028admin',
  'al\u00a0ice',
  'alice\u3164',
  'alice\ud800',
  'alice\u0007',
  'alice\u{e0041}',
];
// Every character the page and export must escape (none of them may appear raw).
const RAW_RE =
  /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}\u2800]|(?! )\p{Zs}/u;

function event(username: string): AuditEvent {
  return {
    id: '00000000-0000-4000-8000-000000000001',
    seq: 7,
    occurredAt: '2026-01-01T00:00:00.000Z',
    type: 'mfa_started',
    outcome: 'info',
    username,
    reason: `r${username}`,
    detail: { return_to: `/x${username}` },
    userAgent: `ua${username}`,
  } as unknown as AuditEvent;
}

describe(showUnsafe.name, () => {
  it.each([
    ['alice\u202egnp.exe', 'alice\\u{202E}gnp.exe'],
    ['a\u{e0041}b', 'a\\u{E0041}b'],
    ['a\ud800b', 'a\\u{D800}b'],
    ['plain DOMAIN\\user', 'plain DOMAIN\\user'],
    ['literal \\u{202E} text', 'literal \\u{5C}u{202E} text'],
  ])('should show %j as %j', (input, shown) => {
    expect(showUnsafe(input)).toBe(shown);
  });
});

describe('audit page', () => {
  it.each(SPOOFS)('should show %j escaped, never raw, in the list and detail pages', (name) => {
    const list = auditListPage({
      form: {},
      filter: {},
      bucket: 'hour',
      limit: 50,
      paged: false,
      events: [event(name)],
      nextCursor: null,
      stats: [],
    });
    const detail = auditEventPage(event(name));
    for (const html of [list, detail]) {
      // The templates' own newlines are markup; every other unsafe character must be escaped.
      expect(html.replace(/\n/g, '')).not.toMatch(RAW_RE);
      expect(html).toContain('<span class="esc" title="escaped character">\\u{');
    }
  });

  it('should mark the RLO of the issue visibly', () => {
    const html = auditEventPage(event('alice\u202egnp.exe'));
    expect(html).toContain(
      'alice<span class="esc" title="escaped character">\\u{202E}</span>gnp.exe',
    );
  });
});

describe('CSV export', () => {
  it.each(SPOOFS)('should write %j escaped, never raw', (name) => {
    const line = csvLine(event(name));
    // CR LF ends the row: the cells themselves hold no raw unsafe character.
    expect(line.slice(0, -2)).not.toMatch(RAW_RE);
    expect(line).toContain('\\u{');
  });

  it('should still quote newlines and guard formulas after escaping', () => {
    expect(csvCell('two\nlines')).toBe('"two\nlines"');
    expect(csvCell('=1+1\u202e')).toBe("'=1+1\\u{202E}");
  });
});
