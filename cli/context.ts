/**
 * What a ctl command runs with: its I/O, the parsed global and command
 * flags, the output printer and a gateway client built from `--endpoints`,
 * plus etcdctl's retry-until-deadline behaviour for unreachable endpoints.
 *
 * @module
 */

import { type Client, ConnectionError, EtcdError, GrpcCode } from "../client/mod.ts";
import type { FlagValue } from "./flags.ts";
import type { Out, Printer } from "./printer.ts";
import type { StdinReader } from "./password.ts";

export type { Out };

/** The process surface a ctl run uses; tests pass in-memory ones. */
export interface CtlIO {
  /** Command output. */
  stdout: Out;
  /** Errors, and `endpoint health` in simple format (as etcdctl). */
  stderr: Out;
  /** Standard input, opened on first use. */
  stdin(): ReadableStream<Uint8Array>;
  /** An environment variable, or undefined. */
  env(name: string): string | undefined;
  /**
   * Whether stderr is a terminal (progress bars are drawn only then, so
   * output to a file or pipe stays etcdctl's); absent: not a terminal.
   */
  isTerminal?(): boolean;
  /**
   * Turns the terminal's echo off while a password is typed, and on again
   * (speakeasy's `stty -echo` / `stty echo`); absent: nothing to do.
   */
  setEcho?(on: boolean): Promise<void>;
}

/** One ctl invocation's state, handed to a command. */
export interface CtlContext {
  io: CtlIO;
  /** Global and command flag values by long name. */
  flags: ReadonlyMap<string, FlagValue>;
  /** Command flags given on the command line. */
  changed: ReadonlySet<string>;
  /** The arguments after the command word, flags and `--` included (etcdctl's os.Args for watch). */
  rawArgs: readonly string[];
  /** `--endpoints` as given (etcdctl prints them so). */
  endpoints: string[];
  /** `--command-timeout` in milliseconds. */
  commandTimeout: number;
  /** The `-w` printer. */
  printer: Printer;
  /** A client over all endpoints (made on first use). */
  client(): Client;
  /** A client over one endpoint (endpoint health). */
  clientFor(endpoint: string): Client;
  /** stdin for passwords, shared by every prompt of the run (cli/password.ts). */
  stdinReader: StdinReader;
}

/** etcdctl's error for a call that did not finish within --command-timeout. */
export function deadlineExceeded(): EtcdError {
  return new EtcdError("context deadline exceeded", GrpcCode.DeadlineExceeded);
}

const RETRY_PAUSE_MS = 50;

/**
 * Runs `call` until it succeeds, fails for a reason other than an
 * unreachable endpoint, or `timeoutMs` passes (then: `context deadline
 * exceeded`), as clientv3 waits for a connection within the command's
 * context. `call` gets the milliseconds left. Writes (`idempotent` false)
 * are retried only when the request provably never reached a server.
 */
export async function untilDeadline<T>(
  timeoutMs: number,
  idempotent: boolean,
  call: (remainingMs: number) => Promise<T>,
): Promise<T> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const remaining = end - performance.now();
    if (remaining <= 0) throw deadlineExceeded();
    try {
      return await call(remaining);
    } catch (e) {
      if (e instanceof EtcdError && e.code === GrpcCode.DeadlineExceeded) {
        throw deadlineExceeded();
      }
      const retry = e instanceof ConnectionError && (e.notExecuted || idempotent);
      if (!retry) throw e;
      const wait = Math.min(RETRY_PAUSE_MS, end - performance.now());
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  }
}

/** Reads a whole stream into bytes. */
export async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let n = 0;
  for await (const c of stream) {
    chunks.push(c);
    n += c.length;
  }
  const out = new Uint8Array(n);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/**
 * SIGINT as an AbortSignal (etcdctl's `signal.Notify(sigc, os.Interrupt)`):
 * while listening, an interrupt aborts `signal` instead of ending the
 * process. `dispose` stops listening.
 */
export function onInterrupt(): { signal: AbortSignal; dispose(): void } {
  const abort = new AbortController();
  const handler = () => abort.abort();
  Deno.addSignalListener("SIGINT", handler);
  return {
    signal: abort.signal,
    dispose: () => Deno.removeSignalListener("SIGINT", handler),
  };
}

/** Resolves when `signal` aborts. */
export function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
}
