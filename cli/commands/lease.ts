/**
 * `lease grant <ttl>`, `lease revoke <id>`, `lease timetolive <id> [--keys]`,
 * `lease list`, `lease keep-alive [--once] <id>`: etcdctl 3.4's lease
 * commands, lease IDs in hex on the command line.
 *
 * Exit codes as etcdctl's: 128 for bad arguments; 1 when grant or revoke
 * fails (`failed to grant lease (…)`); 2 (ExitBadConnection) when
 * timetolive, list or `keep-alive --once` fails. Unlike etcdctl, whose
 * timetolive, list and keep-alive calls have no deadline, ctl gives each
 * call `--command-timeout`.
 *
 * @module
 */

import { Lease } from "../../client/lease.ts";
import { EtcdError, GrpcCode } from "../../client/mod.ts";
import { CtlError, ExitCode } from "../exit.ts";
import { type CtlContext, untilDeadline } from "../context.ts";
import type { FlagSpec } from "../flags.ts";
import { parseGoInt64 } from "../go_format.ts";
import { leaseHex, SimplePrinter } from "../printer.ts";

/** The subcommands, as etcdctl lists them. */
export const SUBCOMMANDS = ["grant", "keep-alive", "list", "revoke", "timetolive"] as const;

/** Flags of `lease` itself (none besides the global ones). */
export const flags: readonly FlagSpec[] = [];

/** Flags by subcommand. */
export const SUB_FLAGS: Readonly<Record<string, readonly FlagSpec[]>> = {
  "timetolive": [{ name: "keys", kind: "bool", default: false }],
  "keep-alive": [{ name: "once", kind: "bool", default: false }],
};

/** etcdctl's `leaseFromArgs`: a hex int64. */
function leaseFromArg(arg: string): bigint {
  try {
    return parseGoInt64(arg, 16);
  } catch (e) {
    throw new CtlError(
      ExitCode.BadArgs,
      `bad lease ID arg (${(e as Error).message}), expecting ID in Hex`,
    );
  }
}

/** A failed call as etcdctl reports it: exit `code`, the message wrapped by `wrap`. */
function failed(code: number, e: unknown, wrap = (m: string) => m): never {
  if (e instanceof EtcdError) throw new CtlError(code, wrap(e.message));
  throw e;
}

async function grant(ctx: CtlContext, args: string[]): Promise<void> {
  if (args.length !== 1) {
    throw new CtlError(ExitCode.BadArgs, "lease grant command needs TTL argument");
  }
  let ttl: bigint;
  try {
    ttl = parseGoInt64(args[0]);
  } catch (e) {
    throw new CtlError(ExitCode.BadArgs, `bad TTL (${(e as Error).message})`);
  }
  const resp = await untilDeadline(
    ctx.commandTimeout,
    false,
    (timeout) => ctx.client().leaseGrant({ TTL: Number(ttl) }, { timeout }),
  ).catch((e) => failed(ExitCode.Error, e, (m) => `failed to grant lease (${m})`));
  ctx.printer.leaseGrant(resp);
}

async function revoke(ctx: CtlContext, args: string[]): Promise<void> {
  if (args.length !== 1) {
    throw new CtlError(ExitCode.BadArgs, "lease revoke command needs 1 argument");
  }
  const id = leaseFromArg(args[0]);
  const resp = await untilDeadline(
    ctx.commandTimeout,
    false,
    (timeout) => ctx.client().leaseRevoke({ ID: id }, { timeout }),
  ).catch((e) => failed(ExitCode.Error, e, (m) => `failed to revoke lease (${m})`));
  ctx.printer.leaseRevoke(id, resp);
}

async function timeToLive(ctx: CtlContext, args: string[]): Promise<void> {
  if (args.length !== 1) {
    throw new CtlError(ExitCode.BadArgs, "lease timetolive command needs lease ID as argument");
  }
  const id = leaseFromArg(args[0]);
  const keys = ctx.flags.get("keys") === true;
  const resp = await untilDeadline(
    ctx.commandTimeout,
    true,
    (timeout) => ctx.client().leaseTimeToLive({ ID: id, ...(keys ? { keys } : {}) }, { timeout }),
  ).catch((e) => failed(ExitCode.BadConnection, e));
  ctx.printer.leaseTimeToLive(resp, keys);
}

async function list(ctx: CtlContext): Promise<void> {
  const resp = await untilDeadline(
    ctx.commandTimeout,
    true,
    (timeout) => ctx.client().leaseLeases({ timeout }),
  ).catch((e) => failed(ExitCode.BadConnection, e));
  ctx.printer.leaseLeases(resp);
}

async function keepAlive(ctx: CtlContext, args: string[]): Promise<void> {
  if (args.length !== 1) {
    throw new CtlError(ExitCode.BadArgs, "lease keep-alive command needs lease ID as argument");
  }
  const id = leaseFromArg(args[0]);
  if (ctx.flags.get("once") === true) {
    const resp = await untilDeadline(
      ctx.commandTimeout,
      true,
      (timeout) => ctx.client().leaseKeepAlive({ ID: id }, { timeout }),
    ).catch((e) => failed(ExitCode.BadConnection, e));
    // clientv3's KeepAliveOnce turns "no such lease" (TTL 0) into this error.
    if (resp.TTL <= 0) {
      throw new CtlError(
        ExitCode.BadConnection,
        new EtcdError("etcdserver: requested lease not found", GrpcCode.NotFound).message,
      );
    }
    ctx.printer.leaseKeepAlive(resp);
    return;
  }
  // Renew at TTL/3 until the lease is gone, however that shows (as clientv3's
  // KeepAlive channel closes), then say so in simple output.
  try {
    for await (const resp of new Lease(ctx.client()).of(id).keepAlive()) {
      ctx.printer.leaseKeepAlive(resp);
    }
  } catch (e) {
    if (!(e instanceof EtcdError)) throw e;
  }
  if (ctx.printer instanceof SimplePrinter) {
    ctx.io.stdout.write(`lease ${leaseHex(id)} expired or revoked.\n`);
  }
}

/** Runs `lease <sub>`. */
export function run(ctx: CtlContext, args: string[], sub: string): Promise<void> {
  switch (sub) {
    case "grant":
      return grant(ctx, args);
    case "revoke":
      return revoke(ctx, args);
    case "timetolive":
      return timeToLive(ctx, args);
    case "list":
      return list(ctx);
    default:
      return keepAlive(ctx, args);
  }
}
