/**
 * cairn's structured log: one JSON object per line, in the layout of etcd's
 * zap logger (`{"level":"info","ts":"2026-01-02T03:04:05.678Z","msg":"…",
 * …fields}`), filtered by --log-level and written to the --log-outputs
 * (stderr by default). Field names are etcd's where etcd has one
 * (`data-dir`, `local-member-id`, `took`, `error`); durations are Go's
 * duration strings (`took: "1.2ms"`), as zap writes them.
 *
 * As etcd's logger, entries with the same level and message are sampled
 * past `LOG_SAMPLE_INITIAL` a second: then one in `LOG_SAMPLE_THEREAFTER`
 * is written, so a flood of one warning cannot drown the log.
 *
 * Each thread has its own instance of this module: the main thread opens
 * the outputs from the flags, and server/workers.ts passes the level, the
 * outputs and the shared write lock to the HTTP worker threads in their
 * init message. Every thread writes a whole line at a time under that lock
 * (a `SharedArrayBuffer` word), so lines from different threads never
 * interleave, whatever the output (a file, a pipe, a terminal). `core/`
 * never imports this module (it does no I/O); code there reports through
 * callbacks that server code logs.
 *
 * @module
 */
import { invariant } from "../core/invariant.ts";
import {
  LOG_LOCK_TIMEOUT_MS,
  LOG_SAMPLE_INITIAL,
  LOG_SAMPLE_THEREAFTER,
  MAX_LOG_SAMPLE_KEYS,
} from "../core/limits.ts";
import { formatGoDuration } from "../cli/go_format.ts";
import { goOsError } from "../core/go_os_error.ts";

/** etcd's log levels, least severe first (--log-level takes any of them). */
export const LOG_LEVELS = ["debug", "info", "warn", "error", "panic", "fatal"] as const;

/** A log level. */
export type LogLevel = typeof LOG_LEVELS[number];

/** Extra fields of a log entry, by name. Errors log their message; bigints their decimal text. */
export type LogFields = Record<string, unknown>;

/** Whether `s` names a log level. */
export function isLogLevel(s: string): s is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(s);
}

/**
 * A duration in milliseconds as zap logs it: Go's `time.Duration` string
 * (`850ns`, `23.666µs`, `5.346464ms`, `1.5s`, `1m30s`).
 *
 * @example
 * ```ts
 * goDuration(100); // "100ms"
 * ```
 */
export function goDuration(ms: number): string {
  invariant(Number.isFinite(ms), "a duration is a finite number of milliseconds");
  return formatGoDuration(BigInt(Math.round(ms * 1e6)));
}

/** A 64-bit ID (member, cluster) as etcd logs it: lower-case hex without padding. */
export function hexId(id: bigint): string {
  return id.toString(16);
}

const RESERVED = new Set(["level", "ts", "msg"]);

/** Options of {@linkcode Logger}. */
export interface LoggerOptions {
  /** Least severe level written; default `info` (etcd's default). */
  level?: LogLevel;
  /** Writes one line (it ends with a newline); default: stderr. */
  write?: (line: string) => void;
  /** The clock for `ts` and sampling; default the system clock. */
  now?: () => Date;
}

const encoder = new TextEncoder();

/** Writes all of `bytes` to `out` synchronously, so a line is never split or lost at exit. */
function writeAll(out: { writeSync(p: Uint8Array): number }, bytes: Uint8Array): void {
  let written = 0;
  while (written < bytes.length) written += out.writeSync(bytes.subarray(written));
}

function writeStderr(line: string): void {
  writeAll(Deno.stderr, encoder.encode(line));
}

function encodeField(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Error) return value.message;
  return value;
}

/** A structured logger (see the module comment for the format). */
export class Logger {
  #rank: number;
  #write: (line: string) => void;
  #now: () => Date;
  #outputs: LogOutputs | undefined;
  /** Sampling: entries per level and message in the second `#second`. */
  #counts = new Map<string, number>();
  #second = 0;

  /**
   * Builds a logger.
   * @param options level, output and clock; every one has a default.
   */
  constructor(options: LoggerOptions = {}) {
    this.#rank = LOG_LEVELS.indexOf(options.level ?? "info");
    this.#write = options.write ?? writeStderr;
    this.#now = options.now ?? (() => new Date());
  }

  /** The least severe level written. */
  get level(): LogLevel {
    return LOG_LEVELS[this.#rank];
  }

  /** Set the least severe level written. */
  set level(level: LogLevel) {
    invariant(isLogLevel(level), "a log level is one of LOG_LEVELS");
    this.#rank = LOG_LEVELS.indexOf(level);
  }

  /** Send every line from now on to `outputs` (see {@linkcode LogOutputs}). */
  useOutputs(outputs: LogOutputs): void {
    this.#outputs = outputs;
    this.#write = (line) => outputs.write(line);
  }

  /** The outputs given to {@linkcode Logger.useOutputs}, if any (else the `write` option or stderr). */
  get outputs(): LogOutputs | undefined {
    return this.#outputs;
  }

  /** Whether an entry at `level` is written. */
  enabled(level: LogLevel): boolean {
    return LOG_LEVELS.indexOf(level) >= this.#rank;
  }

  /**
   * Write an entry at `level` if enabled (and not sampled away). `fields`
   * must not use the names `level`, `ts` or `msg`; undefined fields are
   * left out.
   */
  log(level: LogLevel, msg: string, fields: LogFields = {}): void {
    if (!this.enabled(level)) return;
    const now = this.#now();
    if (!this.#sampled(level, msg, now)) return;
    const entry: Record<string, unknown> = { level, ts: now.toISOString(), msg };
    for (const [key, value] of Object.entries(fields)) {
      invariant(!RESERVED.has(key), "log fields do not reuse the names level, ts and msg");
      entry[key] = value;
    }
    this.#write(JSON.stringify(entry, encodeField) + "\n");
  }

  /** zap's sampler: whether this entry is written. */
  #sampled(level: LogLevel, msg: string, now: Date): boolean {
    const second = Math.floor(now.getTime() / 1000);
    if (second !== this.#second) {
      this.#second = second;
      this.#counts.clear();
    }
    const key = `${level}\n${msg}`;
    const n = (this.#counts.get(key) ?? 0) + 1;
    if (n === 1 && this.#counts.size >= MAX_LOG_SAMPLE_KEYS) return true;
    this.#counts.set(key, n);
    return n <= LOG_SAMPLE_INITIAL || (n - LOG_SAMPLE_INITIAL) % LOG_SAMPLE_THEREAFTER === 0;
  }

  /** An entry at debug level. */
  debug(msg: string, fields?: LogFields): void {
    this.log("debug", msg, fields);
  }

  /** An entry at info level. */
  info(msg: string, fields?: LogFields): void {
    this.log("info", msg, fields);
  }

  /** An entry at warn level. */
  warn(msg: string, fields?: LogFields): void {
    this.log("warn", msg, fields);
  }

  /** An entry at error level. */
  error(msg: string, fields?: LogFields): void {
    this.log("error", msg, fields);
  }

  /** An entry at fatal level (always written); the caller then exits, as etcd does. */
  fatal(msg: string, fields?: LogFields): void {
    this.log("fatal", msg, fields);
  }
}

/** An output that cannot be opened; the message is zap's (`open sink "p": open p: …`). */
export class LogOutputError extends Error {
  /** An error naming the output and why it could not be opened. */
  constructor(message: string) {
    super(message);
    this.name = "LogOutputError";
  }
}

/** Where a sink's bytes go. */
interface Sink {
  writeSync(p: Uint8Array): number;
  close?(): void;
}

/**
 * The outputs of the log, shared by every thread of a member: `stderr`,
 * `stdout` or file paths (appended to, created with mode 0666 less the
 * umask, as zap opens them), after server/config.ts resolved the
 * --log-outputs values (an empty list discards every line, as etcd's
 * `/dev/null`). Every line is written whole to each output under a lock
 * in a `SharedArrayBuffer` that all threads share.
 */
export class LogOutputs {
  /** The resolved outputs, in order. */
  readonly outputs: readonly string[];
  /** The cross-thread write lock (one Int32 word: 0 free, 1 held). */
  readonly lock: SharedArrayBuffer;
  readonly #sinks: Sink[];
  readonly #word: Int32Array;

  private constructor(outputs: string[], lock: SharedArrayBuffer, sinks: Sink[]) {
    this.outputs = outputs;
    this.lock = lock;
    this.#sinks = sinks;
    this.#word = new Int32Array(lock);
  }

  /**
   * Open `outputs` (each `stderr`, `stdout` or a file path). Pass the
   * `lock` of the main thread's instance in a worker thread; the main
   * thread makes a new one.
   *
   * @throws {LogOutputError} when a file cannot be opened for appending,
   *   with zap's message (`open sink "/x/y.log": open /x/y.log: no such
   *   file or directory`).
   */
  static open(outputs: readonly string[], lock?: SharedArrayBuffer): LogOutputs {
    invariant(lock === undefined || lock.byteLength >= 4, "a log lock is one Int32 word");
    const sinks: Sink[] = [];
    for (const output of outputs) {
      // stderr and stdout are shared by the process: never closed here.
      if (output === "stderr") sinks.push({ writeSync: (p) => Deno.stderr.writeSync(p) });
      else if (output === "stdout") sinks.push({ writeSync: (p) => Deno.stdout.writeSync(p) });
      else {
        try {
          const file = Deno.openSync(output, { append: true, create: true, mode: 0o666 });
          sinks.push({ writeSync: (p) => file.writeSync(p), close: () => file.close() });
        } catch (err) {
          for (const s of sinks) s.close?.();
          throw new LogOutputError(`open sink "${output}": open ${output}: ${goOsError(err)}`);
        }
      }
    }
    return new LogOutputs([...outputs], lock ?? new SharedArrayBuffer(4), sinks);
  }

  /** Write `line` whole to every output, holding the cross-thread lock. */
  write(line: string): void {
    if (this.#sinks.length === 0) return;
    const bytes = encoder.encode(line);
    const held = this.#acquire();
    try {
      for (const sink of this.#sinks) {
        try {
          writeAll(sink, bytes);
        } catch {
          // A closed stdout or a full disk loses this line; the server goes on.
        }
      }
    } finally {
      if (held) this.#release();
    }
  }

  /** Take the lock; false when another thread held it past `LOG_LOCK_TIMEOUT_MS`. */
  #acquire(): boolean {
    const deadline = performance.now() + LOG_LOCK_TIMEOUT_MS;
    while (Atomics.compareExchange(this.#word, 0, 0, 1) !== 0) {
      const left = deadline - performance.now();
      if (left <= 0) return false;
      Atomics.wait(this.#word, 0, 1, left);
    }
    return true;
  }

  #release(): void {
    Atomics.store(this.#word, 0, 0);
    Atomics.notify(this.#word, 0, 1);
  }

  /** Close the files this thread opened (stderr and stdout stay open). */
  close(): void {
    for (const sink of this.#sinks) sink.close?.();
  }
}

/** This thread's logger. */
export const log: Logger = new Logger();
