/**
 * Which characters a username may hold, and how stored text with dangerous characters is shown.
 * The policy is pinned in docs/security.md ("Username policy"); tests go through HTTP in
 * test/username-policy.e2e-spec.ts.
 */

/** Longest username, in UTF-16 code units (the pending-login store and audit column bound). */
export const USERNAME_MAX_LENGTH = 255;

/**
 * Characters that are never part of a username and are escaped whenever stored text is shown:
 * controls (Cc), format characters (Cf: bidi embeddings, overrides and isolates, zero-width
 * characters, soft hyphen, BOM, tag characters), lone surrogates (Cs), private use (Co), unassigned
 * code points and noncharacters (Cn), line and paragraph separators (Zl, Zp), every space but
 * U+0020 (Zs: no-break and ideographic spaces look like one), default-ignorable code points that
 * are letters or marks (Hangul fillers, variation selectors, combining grapheme joiner) and
 * U+2800 BRAILLE PATTERN BLANK: all render as nothing, or as something they are not.
 */
export const UNSAFE_CHAR_RE =
  /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}\u2800]|(?! )\p{Zs}/u;
const UNSAFE_CHAR_GLOBAL_RE = new RegExp(UNSAFE_CHAR_RE.source, 'gu');

/** Why a username was refused (stored as the audit event's `detail.why`). */
export type UsernameRefusal =
  | 'not_text'
  | 'empty'
  | 'too_long'
  | 'control'
  | 'format'
  | 'surrogate'
  | 'private_use'
  | 'unassigned'
  | 'separator'
  | 'space'
  | 'invisible'
  | 'whitespace_edge'
  | 'combining';

export type UsernameCheck =
  { ok: true; username: string } | { ok: false; why: UsernameRefusal; length: number };

/** More combining marks in a row than any script needs ("Zalgo" text that paints over its row). */
const MAX_COMBINING_RUN = 4;
const COMBINING_RUN_RE = new RegExp(`\\p{M}{${MAX_COMBINING_RUN + 1}}`, 'u');

function classify(ch: string): UsernameRefusal {
  if (/\p{Cc}/u.test(ch)) {
    return 'control';
  }
  if (/\p{Cf}/u.test(ch)) {
    return 'format';
  }
  if (/\p{Cs}/u.test(ch)) {
    return 'surrogate';
  }
  if (/\p{Co}/u.test(ch)) {
    return 'private_use';
  }
  if (/\p{Cn}/u.test(ch)) {
    return 'unassigned';
  }
  if (/[\p{Zl}\p{Zp}]/u.test(ch)) {
    return 'separator';
  }
  if (/\p{Zs}/u.test(ch)) {
    return 'space';
  }
  return 'invisible';
}

/**
 * The username policy. The name is first put in Unicode NFC (canonically equivalent spellings,
 * such as `é` as one code point or as `e` + U+0301, become one name for Duo, the rate limits and
 * the audit trail); then it must be 1 to 255 UTF-16 code units, hold no UNSAFE_CHAR_RE character,
 * neither start nor end with a space, not start with a combining mark, and have no run of more than
 * four combining marks. Compatibility forms (fullwidth letters, ligatures) are kept: NFKC would
 * change names that Duo holds as typed.
 */
export function checkUsername(value: unknown): UsernameCheck {
  if (typeof value !== 'string') {
    return { ok: false, why: 'not_text', length: 0 };
  }
  const length = value.length;
  if (/\p{Cs}/u.test(value)) {
    return { ok: false, why: 'surrogate', length };
  }
  const username = value.normalize('NFC');
  if (username.length === 0) {
    return { ok: false, why: 'empty', length };
  }
  if (username.length > USERNAME_MAX_LENGTH) {
    return { ok: false, why: 'too_long', length };
  }
  const bad = UNSAFE_CHAR_RE.exec(username);
  if (bad) {
    return { ok: false, why: classify(bad[0]), length };
  }
  if (username.startsWith(' ') || username.endsWith(' ')) {
    return { ok: false, why: 'whitespace_edge', length };
  }
  if (/^\p{M}/u.test(username) || COMBINING_RUN_RE.test(username)) {
    return { ok: false, why: 'combining', length };
  }
  return { ok: true, username };
}

/**
 * Stored text made safe to show: every UNSAFE_CHAR_RE character becomes `\u{XXXX}` (its code point
 * in hex), and a literal `\u{` in the text becomes `\u{5C}u{`, so the shown form always decodes back
 * to the stored one. `keep` lists characters shown as they are (a `<pre>` block keeps its newlines).
 */
export function showUnsafe(text: string, keep = ''): string {
  return text
    .replace(/\\u\{/g, '\\u{5C}u{')
    .replace(UNSAFE_CHAR_GLOBAL_RE, (ch) =>
      keep.includes(ch) ? ch : `\\u{${ch.codePointAt(0)!.toString(16).toUpperCase()}}`,
    );
}

/** True when showUnsafe would change the text. */
export function hasUnsafe(text: string): boolean {
  return UNSAFE_CHAR_RE.test(text) || text.includes('\\u{');
}
