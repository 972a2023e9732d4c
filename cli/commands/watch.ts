/**
 * `watch [options] [key or prefix] [range_end] [--] [exec-command arg1 arg2 ...]`,
 * as etcdctl 3.4 runs it: every response is printed in the `-w` format
 * (simple: `PUT`/`DELETE`, the previous key and value with `--prev-kv`, then
 * the key and value); with `-- command`, the command runs once per event with
 * `ETCD_WATCH_REVISION` (the response's header revision), and
 * `ETCD_WATCH_EVENT_TYPE`, `ETCD_WATCH_KEY`, `ETCD_WATCH_VALUE` as Go `%q`
 * strings. The watch runs until interrupted; when the server cancels it
 * (compacted revision) ctl prints `watch was canceled (<error>)` and exits 5
 * with `Error: watch is canceled by the server`. `-i` reads `watch [options]
 * key [range_end]` lines from standard input and exits 3 at its end.
 * `ETCDCTL_WATCH_KEY` and `ETCDCTL_WATCH_RANGE_END` give the range as in
 * etcdctl. `--progress-notify` (etcdctl 3.5's flag; 3.4 has none) asks for
 * progress notifications, printed `progress notify: <revision>`.
 *
 * @module
 */

import { type Client, isWatchCanceled, type Watcher } from "../../client/mod.ts";
import type { WatchBatch } from "../../core/api/types.ts";
import { EtcdError } from "../../core/errors.ts";
import { goQuote, goQuoteString } from "../go_format.ts";
import type { CtlContext } from "../context.ts";
import { CtlError, ExitCode } from "../exit.ts";
import { FlagError, type FlagSpec, type FlagValue, parseFlags } from "../flags.ts";
import type { Printer } from "../printer.ts";
import { argify, StreamLineReader } from "../txn_grammar.ts";

/** Flags of `watch` (`--progress-notify` is etcdctl 3.5's). */
export const flags: readonly FlagSpec[] = [
  { name: "interactive", short: "i", kind: "bool", default: false },
  { name: "prefix", kind: "bool", default: false },
  { name: "rev", kind: "int", default: 0n },
  { name: "prev-kv", kind: "bool", default: false },
  { name: "progress-notify", kind: "bool", default: false },
];

const BAD_ARGS_NUM = "bad number of arguments";
const BAD_ARGS_CONFLICT_ENV = "bad number of arguments (found conflicting environment key)";
const BAD_ARGS_SEPARATOR = "bad number of arguments (found separator --, but no commands)";

/** What one watch runs with: its range and flags, and the command to run per event. */
interface WatchSpec {
  args: string[];
  exec: string[];
  prefix: boolean;
  rev: bigint;
  prevKv: boolean;
  progressNotify: boolean;
}

const badArgs = (msg: string) => new CtlError(ExitCode.BadArgs, msg);

/** etcdctl's `parseWatchArgs` for a command line: the watch arguments and the exec command. */
function parseCommandLine(
  raw: readonly string[],
  parsed: readonly string[],
  envKey: string,
  envRange: string,
): { args: string[]; exec: string[] } {
  let watchArgs = [...parsed];
  const sep = raw.indexOf("--");
  if (sep >= 0 && sep === raw.length - 1) throw badArgs(BAD_ARGS_SEPARATOR);
  if (sep < 0 && raw.length < 1 && envKey === "") throw badArgs(BAD_ARGS_NUM);
  if (sep >= 0 && envKey !== "") {
    // "ETCDCTL_WATCH_KEY=foo watch foo -- echo 1": an argument before `--` conflicts.
    let r = raw.length - 1;
    for (let w = watchArgs.length - 1; w >= 0; w--) {
      if (watchArgs[w] === raw[r]) {
        r--;
        continue;
      }
      if (r === sep) throw badArgs(BAD_ARGS_CONFLICT_ENV);
    }
  }
  if (sep < 0 && watchArgs.length > 0 && envKey !== "") throw badArgs(BAD_ARGS_CONFLICT_ENV);
  const exec = sep >= 0 ? raw.slice(sep + 1) : [];
  if (envKey !== "") watchArgs = [envKey, ...(envRange !== "" ? [envRange] : []), ...watchArgs];
  if (sep < 0) return { args: watchArgs, exec };
  const end = watchArgs.lastIndexOf(exec[0]);
  return { args: watchArgs.slice(0, Math.max(end, 0)), exec };
}

/** Opens the watch of `spec` (etcdctl's `getWatchChan`). */
function openWatch(client: Client, spec: WatchSpec): Watcher {
  if (spec.args.length < 1) throw badArgs(BAD_ARGS_NUM);
  let rangeEnd: string | undefined;
  if (spec.args.length === 2) {
    if (spec.prefix) throw badArgs("`range_end` and `--prefix` are mutually exclusive");
    rangeEnd = spec.args[1];
  }
  return client.watch(spec.args[0], {
    prefix: spec.prefix,
    range_end: rangeEnd,
    startRevision: spec.rev !== 0n ? Number(spec.rev) : undefined,
    prevKv: spec.prevKv,
    progressNotify: spec.progressNotify,
  });
}

/** Go's `%q` of a `[]string`: `["a" "b"]`. */
function quoteArgs(args: readonly string[]): string {
  return `[${args.map(goQuoteString).join(" ")}]`;
}

/** Runs `exec` once per event of `batch`, with etcdctl's environment variables. */
async function runExec(exec: readonly string[], batch: WatchBatch): Promise<void> {
  for (const ev of batch.events) {
    let code: number;
    let signal: string | null = null;
    try {
      const status = await new Deno.Command(exec[0], {
        args: exec.slice(1),
        env: {
          ETCD_WATCH_REVISION: String(batch.header.revision),
          ETCD_WATCH_EVENT_TYPE: goQuoteString(ev.type),
          ETCD_WATCH_KEY: goQuote(ev.kv.key),
          ETCD_WATCH_VALUE: goQuote(ev.kv.value),
        },
        stdin: "null",
        stdout: "inherit",
        stderr: "inherit",
      }).spawn().status;
      code = status.code;
      signal = status.signal;
    } catch (e) {
      throw new CtlError(
        ExitCode.Error,
        `command ${quoteArgs(exec)} error (${spawnError(exec[0], e)})\n`,
        true,
      );
    }
    if (code !== 0 || signal !== null) {
      const why = signal !== null ? `signal: ${signalName(signal)}` : `exit status ${code}`;
      throw new CtlError(ExitCode.Error, `command ${quoteArgs(exec)} error (${why})\n`, true);
    }
  }
}

/** Go's `exec` error text for a command that could not start. */
export function spawnError(name: string, e: unknown): string {
  if (e instanceof Deno.errors.NotFound) {
    return name.includes("/")
      ? `fork/exec ${name}: no such file or directory`
      : `exec: ${goQuoteString(name)}: executable file not found in $PATH`;
  }
  if (e instanceof Deno.errors.PermissionDenied) return `fork/exec ${name}: permission denied`;
  return (e as Error).message;
}

/** Go's name of a signal (`os.Signal.String()`), for the common ones. */
export function signalName(sig: string): string {
  const names: Record<string, string> = {
    SIGKILL: "killed",
    SIGTERM: "terminated",
    SIGINT: "interrupt",
    SIGSEGV: "segmentation fault",
    SIGABRT: "aborted",
    SIGPIPE: "broken pipe",
    SIGHUP: "hangup",
  };
  return names[sig] ?? sig;
}

/**
 * Prints a watch's responses until it ends (etcdctl's `printWatchCh`).
 * Resolves when the server canceled the watch (after printing `watch was
 * canceled (…)`) or the watcher was closed.
 */
async function printWatch(
  ctx: CtlContext,
  printer: Printer,
  watcher: Watcher,
  exec: readonly string[],
): Promise<void> {
  try {
    for await (const batch of watcher) {
      if (batch.events.length === 0 && batch.revision !== 0) {
        ctx.io.stdout.write(`progress notify: ${batch.revision}\n`);
      }
      printer.watch({
        header: batch.header,
        events: batch.events,
        compactRevision: 0,
        canceled: false,
        created: false,
      });
      if (exec.length > 0) await runExec(exec, batch);
    }
  } catch (e) {
    if (!(e instanceof EtcdError)) throw e;
    ctx.io.stderr.write(`watch was canceled (${e.message})\n`);
    if (isWatchCanceled(e)) {
      printer.watch({
        header: e.response.header,
        events: e.response.events ?? [],
        compactRevision: e.compactRevision,
        canceled: true,
        created: false,
      });
    } else {
      // clientv3 closes the channel with a made-up response holding only the error.
      printer.watch({
        header: { cluster_id: 0n, member_id: 0n, revision: 0, raft_term: 0 },
        compactRevision: 0,
        canceled: true,
        created: false,
      });
    }
  }
}

function specFrom(values: ReadonlyMap<string, FlagValue>, args: string[], exec: string[]) {
  return {
    args,
    exec,
    prefix: values.get("prefix") === true,
    rev: values.get("rev") as bigint,
    prevKv: values.get("prev-kv") === true,
    progressNotify: values.get("progress-notify") === true,
  };
}

/** Runs `watch`; returns only by throwing (etcdctl exits 5 when the watch ends). */
export async function run(ctx: CtlContext, args: string[]): Promise<void> {
  const envKey = ctx.io.env("ETCDCTL_WATCH_KEY") ?? "";
  const envRange = ctx.io.env("ETCDCTL_WATCH_RANGE_END") ?? "";
  if (envKey === "" && envRange !== "") {
    throw badArgs(
      `ETCDCTL_WATCH_KEY is empty but got ETCDCTL_WATCH_RANGE_END=${goQuoteString(envRange)}`,
    );
  }
  if (ctx.flags.get("interactive") === true) return await interactive(ctx, envKey, envRange);
  const { args: watchArgs, exec } = parseCommandLine(ctx.rawArgs, args, envKey, envRange);
  const watcher = openWatch(ctx.client(), specFrom(ctx.flags, watchArgs, exec));
  try {
    await printWatch(ctx, ctx.printer, watcher, exec);
  } finally {
    watcher.close();
  }
  throw new CtlError(ExitCode.Interrupted, "watch is canceled by the server");
}

/** `watch -i`: one watch per `watch …` line of standard input, until its end. */
async function interactive(ctx: CtlContext, envKey: string, envRange: string): Promise<void> {
  const reader = new StreamLineReader(ctx.io.stdin());
  const watchers: Watcher[] = [];
  const printing: Promise<void>[] = [];
  // A watch's exec command failing ends ctl at once, as etcdctl's os.Exit does.
  let fail!: (e: unknown) => void;
  const failed = new Promise<never>((_, reject) => fail = reject);
  failed.catch(() => {});
  try {
    for (;;) {
      const line = await Promise.race([reader.readLine(), failed]);
      if (line === null) {
        throw new CtlError(ExitCode.InvalidInput, "Error reading watch request line: EOF");
      }
      const words = argify(line);
      if (words.length < 1) {
        ctx.io.stderr.write(`Invalid command: ${line} (watch and progress supported)\n`);
        continue;
      }
      if (words[0] !== "watch") {
        ctx.io.stderr.write(`Invalid command ${line} (only support watch)\n`);
        continue;
      }
      if (words.length < 2 && envKey === "") {
        ctx.io.stderr.write(`Invalid command ${line} (command type or key is not provided)\n`);
        continue;
      }
      const spec = parseInteractiveLine(words.slice(1), envKey, envRange);
      let watcher: Watcher;
      try {
        watcher = openWatch(ctx.client(), spec);
      } catch (e) {
        if (!(e instanceof CtlError)) throw e;
        ctx.io.stderr.write(`Invalid command ${line} (${e.message})\n`);
        continue;
      }
      watchers.push(watcher);
      printing.push(printWatch(ctx, ctx.printer, watcher, spec.exec).catch(fail));
    }
  } finally {
    reader.release();
    for (const w of watchers) w.close();
    await Promise.allSettled(printing);
  }
}

/** etcdctl's `parseWatchArgs` for an interactive line (without its leading `watch`). */
function parseInteractiveLine(words: string[], envKey: string, envRange: string): WatchSpec {
  const sep = words.indexOf("--");
  if (sep >= 0 && sep === words.length - 1) throw badArgs(BAD_ARGS_SEPARATOR);
  let parsed;
  try {
    parsed = parseFlags(words, flags);
  } catch (e) {
    if (e instanceof FlagError) throw badArgs(e.message);
    throw e;
  }
  if (sep < 0 && envKey === "" && parsed.args.length < 1) throw badArgs(BAD_ARGS_NUM);
  if (sep < 0 && parsed.args.length > 0 && envKey !== "") throw badArgs(BAD_ARGS_CONFLICT_ENV);
  const exec = sep >= 0 ? words.slice(sep + 1) : [];
  let args = parsed.args;
  if (envKey !== "") args = [envKey, ...(envRange !== "" ? [envRange] : []), ...args];
  if (sep >= 0) args = args.slice(0, Math.max(args.lastIndexOf(exec[0]), 0));
  return specFrom(parsed.values, args, exec);
}
