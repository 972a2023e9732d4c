/**
 * `lock [--ttl seconds] <lockname> [exec-command arg1 arg2 ...]`, as
 * etcdctl 3.4 runs it: a session (a lease of `--ttl` seconds, default 10,
 * kept alive) and a Mutex on `lockname`, waiting as long as it takes.
 * Without a command, ctl prints the lock key (as `get` would: the key,
 * then its empty value) and holds the lock until SIGINT, then unlocks and
 * exits 0. With a command, it runs the command with `ETCD_LOCK_KEY` (the
 * key) and `ETCD_LOCK_REV` (the revision of the lock answer's header) in
 * its environment, unlocks, and fails with the command's error (`exit
 * status 3`) if it failed.
 *
 * Errors as etcdctl's: no lock name exits 128 (`lock takes a lock name
 * argument and an optional command to execute`); SIGINT before the lock is
 * held exits 1 with `context canceled`; a session lost while holding exits
 * 1 with `session expired`. As etcdctl, the session's lease is left to
 * expire rather than revoked.
 *
 * @module
 */

import { Mutex } from "../../client/concurrency.ts";
import { Session } from "../../client/lease.ts";
import { aborted, type CtlContext, onInterrupt } from "../context.ts";
import { CtlError, ExitCode } from "../exit.ts";
import type { FlagSpec } from "../flags.ts";
import { signalName, spawnError } from "./watch.ts";

/** Flags of `lock`: the session's TTL in seconds. */
export const flags: readonly FlagSpec[] = [{ name: "ttl", kind: "int", default: 10n }];

/** clientv3/concurrency's default session TTL, used when `--ttl` is not positive. */
const DEFAULT_TTL = 60;

/** Runs `lock`. */
export async function run(ctx: CtlContext, args: string[]): Promise<void> {
  if (args.length === 0) {
    throw new CtlError(
      ExitCode.BadArgs,
      "lock takes a lock name argument and an optional command to execute",
    );
  }
  const ttl = Number(ctx.flags.get("ttl") as bigint);
  const client = ctx.client();
  const session = await Session.create(client, { ttl: ttl > 0 ? ttl : DEFAULT_TTL });
  const interrupt = onInterrupt();
  try {
    const mutex = new Mutex(client, session, args[0]);
    try {
      await mutex.lock({ signal: interrupt.signal });
    } catch (e) {
      if (interrupt.signal.aborted) throw new CtlError(ExitCode.Error, "context canceled");
      throw e;
    }
    if (args.length > 1) {
      let failure: string | undefined;
      try {
        failure = await exec(ctx, args.slice(1), mutex);
      } finally {
        await mutex.unlock();
      }
      if (failure !== undefined) throw new CtlError(ExitCode.Error, failure);
      return;
    }
    const got = await client.get(mutex.key);
    if (got.kvs.length === 0) throw new CtlError(ExitCode.Error, "lock lost on init");
    ctx.printer.get(got);
    const lost = session.done.then(() => false, () => true);
    const how = await Promise.race([aborted(interrupt.signal).then(() => false), lost]);
    if (!how) {
      await mutex.unlock();
      return;
    }
    throw new CtlError(ExitCode.Error, "session expired");
  } finally {
    interrupt.dispose();
    session.orphan();
  }
}

/** Runs the command while the lock is held; its failure as Go's exec reports it. */
async function exec(ctx: CtlContext, cmd: string[], mutex: Mutex): Promise<string | undefined> {
  // etcdctl appends the process's environment after these, so its own values win.
  const env: Record<string, string> = {};
  if (ctx.io.env("ETCD_LOCK_KEY") === undefined) env.ETCD_LOCK_KEY = mutex.key;
  if (ctx.io.env("ETCD_LOCK_REV") === undefined) {
    env.ETCD_LOCK_REV = String(mutex.header?.revision ?? 0);
  }
  let status: Deno.CommandStatus;
  try {
    status = await new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      env,
      stdin: "null",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn().status;
  } catch (e) {
    return spawnError(cmd[0], e);
  }
  if (status.signal !== null) return `signal: ${signalName(status.signal)}`;
  if (status.code !== 0) return `exit status ${status.code}`;
  return undefined;
}
