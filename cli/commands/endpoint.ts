/**
 * `endpoint health`, `endpoint status` and `endpoint hashkv [--rev N]`, per
 * endpoint in `--endpoints`.
 *
 * health: a linearizable `get health` on each endpoint at once (etcdctl's
 * check: a read that goes through consensus), the results in completion
 * order, exit 1 with `unhealthy cluster` if any failed. status:
 * Maintenance.Status of each endpoint in turn. hashkv: Maintenance.HashKV
 * (`/v3/maintenance/hashkv`, which etcd 3.4's gateway lacks: cairn or etcd
 * 3.5+) of each endpoint in turn, up to revision `--rev` (0: the current
 * one); an endpoint that fails gets `Failed to get the hash of endpoint
 * <ep> (<error>)` on stderr, the others are printed, then the last error
 * ends the command with exit 1. `-w protobuf` is refused with exit 4.
 *
 * `--cluster`: the endpoints are the client URLs of every member, from a
 * member list asked of `--endpoints` (with failover), in the list's order;
 * when that fails, exit 1 with `failed to fetch endpoints from etcd cluster
 * member list: <error>`.
 *
 * @module
 */

import { EtcdError } from "../../client/mod.ts";
import { CtlError, ExitCode } from "../exit.ts";
import { type CtlContext, untilDeadline } from "../context.ts";
import type { FlagSpec } from "../flags.ts";
import { formatGoDuration } from "../go_format.ts";
import type { EpHashKV, EpHealth, EpStatus } from "../printer.ts";

/** Flags of `endpoint`: `--cluster` (every member's client URLs instead of `--endpoints`). */
export const flags: readonly FlagSpec[] = [
  { name: "cluster", kind: "bool", default: false },
];

/** The subcommands ctl implements. */
export const SUBCOMMANDS = ["hashkv", "health", "status"] as const;

/** Flags of one subcommand: `hashkv --rev` (the highest revision hashed; 0: all). */
export const SUB_FLAGS: Readonly<Record<string, readonly FlagSpec[]>> = {
  "hashkv": [{ name: "rev", kind: "int", default: 0n }],
};

/** An error's text as etcdctl prints it (`%v`). */
export function errorText(e: unknown): string {
  return e instanceof EtcdError ? e.message : String((e as Error)?.message ?? e);
}

/**
 * `--endpoints`, or with `--cluster` every member's client URLs.
 *
 * @throws {CtlError} exit 1 `failed to fetch endpoints from etcd cluster
 *   member list: <error>` when the member list cannot be had.
 */
export async function endpointsOf(ctx: CtlContext): Promise<string[]> {
  if (ctx.flags.get("cluster") !== true) return ctx.endpoints;
  try {
    const resp = await untilDeadline(
      ctx.commandTimeout,
      true,
      (timeout) => ctx.client().memberList({ timeout }),
    );
    return resp.members.flatMap((m) => m.clientURLs);
  } catch (e) {
    throw new CtlError(
      ExitCode.Error,
      `failed to fetch endpoints from etcd cluster member list: ${errorText(e)}`,
    );
  }
}

async function health(ctx: CtlContext): Promise<void> {
  const results: EpHealth[] = [];
  const endpoints = await endpointsOf(ctx);
  await Promise.all(endpoints.map(async (ep) => {
    const start = performance.now();
    let error: string | undefined;
    try {
      await untilDeadline(
        ctx.commandTimeout,
        true,
        (timeout) => ctx.clientFor(ep).get("health", { timeout }),
      );
    } catch (e) {
      if (!(e instanceof EtcdError && e.message === "etcdserver: permission denied")) {
        error = errorText(e);
      }
    }
    const took = formatGoDuration(BigInt(Math.round((performance.now() - start) * 1e6)));
    results.push(
      error === undefined
        ? { endpoint: ep, health: true, took }
        : { endpoint: ep, health: false, took, error },
    );
  }));
  ctx.printer.endpointHealth(results);
  if (results.some((h) => h.error !== undefined)) {
    throw new CtlError(ExitCode.Error, "unhealthy cluster");
  }
}

async function status(ctx: CtlContext): Promise<void> {
  const list: EpStatus[] = [];
  let failed = false;
  for (const ep of await endpointsOf(ctx)) {
    try {
      const s = await untilDeadline(
        ctx.commandTimeout,
        true,
        (timeout) => ctx.client().status({ endpoint: ep, timeout }),
      );
      list.push({ endpoint: ep, status: s });
    } catch (e) {
      failed = true;
      ctx.io.stderr.write(`Failed to get the status of endpoint ${ep} (${errorText(e)})\n`);
    }
  }
  ctx.printer.endpointStatus(list);
  if (failed) throw new CtlError(ExitCode.Error, "", true);
}

async function hashKV(ctx: CtlContext): Promise<void> {
  const rev = Number(ctx.flags.get("rev") as bigint);
  const list: EpHashKV[] = [];
  let failure: unknown;
  for (const ep of await endpointsOf(ctx)) {
    try {
      const r = await untilDeadline(
        ctx.commandTimeout,
        true,
        (timeout) => ctx.client().hashKV(rev, { endpoint: ep, timeout }),
      );
      list.push({ endpoint: ep, hashKV: r });
    } catch (e) {
      failure = e;
      ctx.io.stderr.write(`Failed to get the hash of endpoint ${ep} (${errorText(e)})\n`);
    }
  }
  ctx.printer.endpointHashKV(list);
  if (failure !== undefined) throw new CtlError(ExitCode.Error, errorText(failure));
}

/** Runs `endpoint <sub>`. */
export function run(ctx: CtlContext, args: string[], sub: string): Promise<void> {
  void args;
  switch (sub) {
    case "health":
      return health(ctx);
    case "hashkv":
      return hashKV(ctx);
    default:
      return status(ctx);
  }
}
