/**
 * Folds a flood of like events into one audit row per key and window: the first event of a window
 * is written; later ones in that window are only counted, and the count rides on the next written
 * event of the key (`detail.suppressed`). A flood can then never fill the trail, and none is lost
 * from the count.
 */
export class EventAggregator {
  readonly #seen = new Map<string, { until: number; suppressed: number }>();

  constructor(
    private readonly windowMs = 60_000,
    private readonly maxKeys = 10_000,
  ) {}

  /**
   * Whether to write this event, and how many events of the key were folded since the last written
   * one. Past `maxKeys` live keys the oldest is dropped (its count with it), so memory stays bounded.
   */
  hit(key: string, now = Date.now()): { write: boolean; suppressed: number } {
    const entry = this.#seen.get(key);
    if (entry && entry.until > now) {
      entry.suppressed += 1;
      return { write: false, suppressed: 0 };
    }
    const suppressed = entry?.suppressed ?? 0;
    this.#seen.delete(key);
    if (this.#seen.size >= this.maxKeys) {
      // Maps iterate in insertion order: the first key is the oldest window.
      const oldest = this.#seen.keys().next();
      if (!oldest.done) {
        this.#seen.delete(oldest.value);
      }
    }
    this.#seen.set(key, { until: now + this.windowMs, suppressed: 0 });
    return { write: true, suppressed };
  }
}
