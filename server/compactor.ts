/**
 * Auto-compaction (`--auto-compaction-mode`, `--auto-compaction-retention`),
 * as etcd 3.4 does it:
 * - `periodic`: keep the history of the last retention period (a duration
 *   such as `30m`, or a plain number of hours). The current revision is
 *   sampled every min(retention, 1 h) / 10; once the samples span the
 *   retention, the store is compacted at the revision sampled one retention
 *   ago.
 * - `revision`: keep the last N revisions; every 5 minutes compact at
 *   current revision − N.
 * A retention of 0 disables auto-compaction. The compactor is driven by
 * {@linkcode Compactor.tick} with a clock reading, so tests control time.
 *
 * @module
 */
/** What the compactor needs from the server. */
export interface CompactTarget {
  /** The current revision. */
  currentRevision(): number;
  /** Compact at `revision`; errors (already compacted) are ignored by the caller. */
  compact(revision: number): Promise<void>;
}

const HOUR = 3_600_000;
/** Interval of the revision-mode compactor, in ms (etcd: 5 minutes). */
export const REVISION_MODE_INTERVAL_MS = 5 * 60_000;

/** An auto-compactor; call {@linkcode Compactor.tick} periodically. */
export class Compactor {
  readonly #mode: "periodic" | "revision";
  readonly #retention: number;
  readonly #target: CompactTarget;
  /** (time ms, revision) samples, oldest first; at most `#maxSamples`. */
  #samples: { at: number; rev: number }[] = [];
  #maxSamples: number;
  #lastTick = -Infinity;
  #lastCompacted = 0;
  #running = false;

  /**
   * A compactor of `target` in `mode`, keeping `retention` of history.
   *
   * @param retention ms in periodic mode, revisions in revision mode; > 0.
   */
  constructor(mode: "periodic" | "revision", retention: number, target: CompactTarget) {
    this.#mode = mode;
    this.#retention = retention;
    this.#target = target;
    this.#maxSamples = 12;
  }

  /** How often {@linkcode Compactor.tick} should run, in ms. */
  get intervalMs(): number {
    return this.#mode === "revision"
      ? REVISION_MODE_INTERVAL_MS
      : Math.max(1, Math.min(this.#retention, HOUR) / 10);
  }

  /** Revision of the last compaction this compactor made (0 if none). */
  get lastCompacted(): number {
    return this.#lastCompacted;
  }

  /** Advance to time `now` (ms); compacts when due. Resolves when done. */
  async tick(now: number): Promise<void> {
    if (this.#running || now - this.#lastTick < this.intervalMs) return;
    this.#lastTick = now;
    const rev = this.#target.currentRevision();
    let target = 0;
    if (this.#mode === "revision") {
      target = rev - this.#retention;
    } else {
      this.#samples.push({ at: now, rev });
      // Keep one sample at or before now - retention, and none older.
      while (this.#samples.length > 1 && this.#samples[1].at <= now - this.#retention) {
        this.#samples.shift();
      }
      const oldest = this.#samples[0];
      if (oldest.at <= now - this.#retention) target = oldest.rev;
      if (this.#samples.length > this.#maxSamples * 2) this.#samples.shift();
    }
    if (target <= 0 || target <= this.#lastCompacted) return;
    this.#running = true;
    try {
      await this.#target.compact(target);
      this.#lastCompacted = target;
    } catch {
      // Already compacted past it (by a client): remember and move on.
      this.#lastCompacted = target;
    } finally {
      this.#running = false;
    }
  }
}
