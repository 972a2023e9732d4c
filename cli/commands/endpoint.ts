/**
 * `endpoint health` and `endpoint status`, per endpoint in `--endpoints`.
 *
 * health: a linearizable `get health` on each endpoint at once (etcdctl's
 * check: a read that goes through consensus), the results in completion
 * order, exit 1 with `unhealthy cluster` if any failed. status:
 * Maintenance.Status of each endpoint in turn.
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
import type { EpHealth, EpStatus } from "../printer.ts";

/** Flags of `endpoint`: `--cluster` (every member's client URLs instead of `--endpoints`). */
export const flags: readonly FlagSpec[] = [
  { name: "cluster", kind: "bool", default: false },
];

/** The subcommands ctl implements. */
export const SUBCOMMANDS = ["health", "status"] as const;

function errorText(e: unknown): string {
  return e instanceof EtcdError ? e.message : String((e as Error)?.message ?? e);
}

/** `--endpoints`, or with `--cluster` every member's client URLs. */
async function endpointsOf(ctx: CtlContext): Promise<string[]> {
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

/** Runs `endpoint <sub>`. */
export function run(ctx: CtlContext, args: string[], sub: string): Promise<void> {
  void args;
  return sub === "health" ? health(ctx) : status(ctx);
}
