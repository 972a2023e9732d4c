/**
 * cairn's structured log: one JSON object per line on stderr, in the layout
 * of etcd's zap logger (`{"level":"info","ts":"2026-01-02T03:04:05.678Z",
 * "msg":"…", …fields}`), filtered by --log-level. Field names are etcd's
 * where etcd has one (`data-dir`, `listen-client-urls`, `error`).
 *
 * Each thread has its own instance of this module: the main thread sets the
 * level from the flags, and server/workers.ts passes it to the HTTP worker
 * threads in their init message. `core/` never imports this module (it does
 * no I/O); code there reports through callbacks that server code logs.
 *
 * @module
 */
import { invariant } from "../core/invariant.ts";

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

const RESERVED = new Set(["level", "ts", "msg"]);

/** Options of {@linkcode Logger}. */
export interface LoggerOptions {
  /** Least severe level written; default `info` (etcd's default). */
  level?: LogLevel;
  /** Writes one line (it ends with a newline); default: stderr. */
  write?: (line: string) => void;
  /** The clock for `ts`; default the system clock. */
  now?: () => Date;
}

/** Writes `line` to stderr synchronously, so a line is never split or lost at exit. */
function writeStderr(line: string): void {
  const bytes = new TextEncoder().encode(line);
  let written = 0;
  while (written < bytes.length) written += Deno.stderr.writeSync(bytes.subarray(written));
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

  /** Whether an entry at `level` is written. */
  enabled(level: LogLevel): boolean {
    return LOG_LEVELS.indexOf(level) >= this.#rank;
  }

  /**
   * Write an entry at `level` if enabled. `fields` must not use the names
   * `level`, `ts` or `msg`; undefined fields are left out.
   */
  log(level: LogLevel, msg: string, fields: LogFields = {}): void {
    if (!this.enabled(level)) return;
    const entry: Record<string, unknown> = { level, ts: this.#now().toISOString(), msg };
    for (const [key, value] of Object.entries(fields)) {
      invariant(!RESERVED.has(key), "log fields do not reuse the names level, ts and msg");
      entry[key] = value;
    }
    this.#write(JSON.stringify(entry, encodeField) + "\n");
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

/** This thread's logger. */
export const log: Logger = new Logger();
