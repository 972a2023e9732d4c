/**
 * `defrag [--cluster]`: etcdctl 3.4's defrag, Maintenance.Defragment of each
 * endpoint in `--endpoints` in turn (with `--cluster`: of every member's
 * client URLs, from the member list).
 *
 * Prints `Finished defragmenting etcd member[<endpoint>]` on stdout for
 * each member done and `Failed to defragment etcd member[<endpoint>]
 * (<error>)` on stderr for each that failed, whatever the `-w` format (as
 * etcdctl); exits 1 when any failed. Arguments are ignored, as etcdctl
 * does. `--data-dir` (etcdctl's defragmentation of a stopped member's data
 * directory) is refused with exit 128: a cairn member keeps serving while
 * it defragments, so the running member is the one to defragment.
 *
 * @module
 */

import { CtlError, ExitCode } from "../exit.ts";
import { type CtlContext, untilDeadline } from "../context.ts";
import type { FlagSpec } from "../flags.ts";
import { endpointsOf, errorText } from "./endpoint.ts";

/** Flags of `defrag`: `--cluster`, and etcdctl's `--data-dir` (refused). */
export const flags: readonly FlagSpec[] = [
  { name: "cluster", kind: "bool", default: false },
  { name: "data-dir", kind: "string", default: "" },
];

/** Runs `defrag`. */
export async function run(ctx: CtlContext): Promise<void> {
  if (ctx.flags.get("data-dir") !== "") {
    throw new CtlError(
      ExitCode.BadArgs,
      "--data-dir is not supported by cairn ctl: defragment the running member " +
        "(it keeps serving meanwhile)",
    );
  }
  let failures = 0;
  for (const ep of await endpointsOf(ctx)) {
    try {
      await untilDeadline(
        ctx.commandTimeout,
        false,
        (timeout) => ctx.client().defragment({ endpoint: ep, timeout }),
      );
      ctx.io.stdout.write(`Finished defragmenting etcd member[${ep}]\n`);
    } catch (e) {
      failures++;
      ctx.io.stderr.write(`Failed to defragment etcd member[${ep}] (${errorText(e)})\n`);
    }
  }
  if (failures !== 0) throw new CtlError(ExitCode.Error, "", true);
}
