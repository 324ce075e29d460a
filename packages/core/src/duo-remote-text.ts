// Reading what Duo answers: lenient JSON, text fields, and text made safe for messages and logs.

/** The parsed JSON, or undefined when it is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** A string or number field as text, else undefined. */
export function textField(value: unknown): string | undefined {
  return typeof value === 'string' || typeof value === 'number' ? String(value) : undefined;
}

/** A plain (non-array) object. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Printable, bounded text from a remote answer (no CR/LF injection into logs). */
export function safeText(value: unknown): string {
  return String(value)
    .replace(/[^\x20-\x7e]/g, '?')
    .slice(0, 200);
}

/** `text` with each of `values` (secrets, codes) replaced by [redacted]. */
export function redact(text: string, values: string[]): string {
  return values.reduce((acc, v) => (v ? acc.split(v).join('[redacted]') : acc), text);
}
