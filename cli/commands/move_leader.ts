/**
 * `move-leader <transferee-member-id>`: etcdctl 3.4's leadership transfer.
 * Asks each `--endpoints` endpoint in turn for its status until it finds
 * the leader (a member whose status names itself as leader), then sends
 * MoveLeader (`/v3/maintenance/transfer-leadership`) to that endpoint and
 * prints `Leadership transferred from <leader hex> to <target hex>`.
 *
 * Errors as etcdctl's: exit 128 for a missing or bad ID (`move-leader
 * command needs 1 argument`, `strconv.ParseUint: …`) and for `no leader
 * endpoint given at [<endpoints>]`; exit 1 when a status call or the
 * transfer fails (`etcdserver: bad leader transferee`).
 *
 * @module
 */

import { CtlError, ExitCode } from "../exit.ts";
import { type CtlContext, untilDeadline } from "../context.ts";
import type { FlagSpec } from "../flags.ts";
import { parseGoUint64 } from "../go_format.ts";

/** Flags of `move-leader` (none besides the global ones). */
export const flags: readonly FlagSpec[] = [];

/** Runs `move-leader`. */
export async function run(ctx: CtlContext, args: string[]): Promise<void> {
  if (args.length !== 1) {
    throw new CtlError(ExitCode.BadArgs, "move-leader command needs 1 argument");
  }
  let target: bigint;
  try {
    target = parseGoUint64(args[0], 16);
  } catch (e) {
    throw new CtlError(ExitCode.BadArgs, (e as Error).message);
  }
  let leaderEp: string | undefined;
  let leaderId = 0n;
  for (const ep of ctx.endpoints) {
    const s = await untilDeadline(
      ctx.commandTimeout,
      true,
      (timeout) => ctx.clientFor(ep).status({ timeout }),
    );
    if (s.header.member_id === s.leader) {
      leaderEp = ep;
      leaderId = s.leader;
      break;
    }
  }
  if (leaderEp === undefined) {
    throw new CtlError(
      ExitCode.BadArgs,
      `no leader endpoint given at [${ctx.endpoints.join(" ")}]`,
    );
  }
  const ep = leaderEp;
  const resp = await untilDeadline(
    ctx.commandTimeout,
    false,
    (timeout) => ctx.clientFor(ep).moveLeader({ targetID: target }, { timeout }),
  );
  ctx.printer.moveLeader(leaderId, target, resp);
}
