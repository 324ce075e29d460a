/**
 * A bounded memo of MAC checks this process has already passed: for each tag, the exact input it
 * was verified over and the verdict. A record or cookie read again unchanged (the common case: a
 * session is read on every guarded request) then costs a string comparison instead of an HMAC.
 *
 * Sound because an HMAC check is a pure function of (key, input, tag) and the keys of its owner
 * never change: only pairs that passed the full check are remembered, a hit needs the same tag and
 * the identical input, and anything else (an edited field, a record copied under another key, a
 * forged tag) misses and takes the full, constant-time check. The comparison on a hit is not
 * constant-time, but both sides are values the caller already holds: nothing secret is compared.
 *
 * Bounded by `max` entries, oldest first out (insertion order); a miss never grows it.
 */
export class VerifiedMemo<V> {
  readonly #entries = new Map<string, { input: string; verdict: V }>();

  constructor(private readonly max: number) {}

  /** The verdict remembered for `tag` over exactly `input`, or undefined. */
  get(tag: string, input: string): V | undefined {
    const hit = this.#entries.get(tag);
    return hit !== undefined && hit.input === input ? hit.verdict : undefined;
  }

  /** Remembers a check that passed; call it only after the full check. */
  remember(tag: string, input: string, verdict: V): void {
    if (this.#entries.size >= this.max && !this.#entries.has(tag)) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) {
        this.#entries.delete(oldest);
      }
    }
    this.#entries.set(tag, { input, verdict });
  }

  get size(): number {
    return this.#entries.size;
  }
}
