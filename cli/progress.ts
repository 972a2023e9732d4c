/**
 * Progress of long ctl commands (`snapshot save`, `snapshot restore`) on a
 * terminal: a bar on stderr drawn by the `cli-progress` library (done and
 * total, as bytes or a count, and the rate), then one summary line. When
 * stderr is not a terminal nothing is drawn or printed, so output captured
 * by scripts stays etcdctl's byte for byte.
 *
 * @module
 */
// @ts-types="@types/cli-progress"
import cliProgress from "cli-progress";
import process from "node:process";
import type { CtlIO } from "./context.ts";
import { humanizeBytes } from "./go_format.ts";

/** What a {@linkcode Progress} counts: bytes (shown humanized) or keys. */
export type ProgressUnit = "bytes" | "keys";

/** A progress display; both methods do nothing off a terminal. */
export interface Progress {
  /** `done` of `total` (0: not known yet) processed so far. */
  update(done: number, total: number): void;
  /** Remove the bar and print `summary` (one line) on stderr. */
  finish(summary: string): void;
  /** Remove the bar without a summary (the command failed). */
  abort(): void;
}

const NO_PROGRESS: Progress = { update() {}, finish() {}, abort() {} };

function amount(n: number, unit: ProgressUnit): string {
  return unit === "bytes" ? humanizeBytes(n) : `${n} key${n === 1 ? "" : "s"}`;
}

/**
 * A progress bar labelled `label` on `io`'s stderr, when it is a terminal.
 * Its rate is per second since the bar started.
 */
export function startProgress(io: CtlIO, label: string, unit: ProgressUnit): Progress {
  if (io.isTerminal?.() !== true) return NO_PROGRESS;
  const started = performance.now();
  const bar = new cliProgress.SingleBar({
    format: `${label} [{bar}] {percentage}% | {done} of {size} | {rate}/s`,
    hideCursor: true,
    clearOnComplete: true,
    stream: process.stderr,
  }, cliProgress.Presets.shades_classic);
  let running = false;
  const payload = (done: number, total: number) => {
    const seconds = Math.max((performance.now() - started) / 1000, 1e-3);
    return {
      done: amount(done, unit),
      size: total > 0 ? amount(total, unit) : "?",
      rate: amount(Math.round(done / seconds), unit),
    };
  };
  const stop = () => {
    if (running) bar.stop();
    running = false;
  };
  return {
    update(done, total) {
      if (!running) {
        bar.start(Math.max(total, 1), done, payload(done, total));
        running = true;
      }
      if (total > 0) bar.setTotal(total);
      bar.update(done, payload(done, total));
    },
    finish(summary) {
      stop();
      io.stderr.write(summary + "\n");
    },
    abort: stop,
  };
}

/** `N unit in S s (R/s)`: the summary's figures for `done` processed since `startedMs`. */
export function rateSummary(done: number, unit: ProgressUnit, startedMs: number): string {
  const seconds = Math.max((performance.now() - startedMs) / 1000, 1e-3);
  return `${amount(done, unit)} in ${seconds.toFixed(2)}s (${
    amount(Math.round(done / seconds), unit)
  }/s)`;
}
