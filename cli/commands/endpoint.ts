/**
 * `endpoint health` and `endpoint status`, per endpoint in `--endpoints`.
 *
 * health: a linearizable `get health` on each endpoint at once (etcdctl's
 * check: a read that goes through consensus), the results in completion
 * order, exit 1 with `unhealthy cluster` if any failed. status:
 * Maintenance.Status of each endpoint in turn.
 *
 * @module
 */

import { EtcdError } from "../../client/mod.ts";
import { CtlError, ExitCode } from "../exit.ts";
import { type CtlContext, untilDeadline } from "../context.ts";
import type { FlagSpec } from "../flags.ts";
import { formatGoDuration } from "../go_format.ts";
import type { EpHealth, EpStatus } from "../printer.ts";

/** Flags of `endpoint`. `--cluster` is parsed but needs member list, not served yet. */
export const flags: readonly FlagSpec[] = [
  { name: "cluster", kind: "bool", default: false },
];

/** The subcommands ctl implements. */
export const SUBCOMMANDS = ["health", "status"] as const;

function errorText(e: unknown): string {
  return e instanceof EtcdError ? e.message : String((e as Error)?.message ?? e);
}

async function health(ctx: CtlContext): Promise<void> {
  const results: EpHealth[] = [];
  await Promise.all(ctx.endpoints.map(async (ep) => {
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
  for (const ep of ctx.endpoints) {
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
  if (ctx.flags.get("cluster") === true) {
    throw new CtlError(ExitCode.Error, "--cluster is not supported by cairn ctl yet");
  }
  void args;
  return sub === "health" ? health(ctx) : status(ctx);
}
