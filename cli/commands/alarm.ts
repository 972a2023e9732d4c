/**
 * `alarm list` and `alarm disarm`: etcdctl 3.4's alarm commands over the
 * gateway's `/v3/maintenance/alarm`.
 *
 * list: an Alarm GET of every member's alarms of every kind. disarm: that
 * list, then a DEACTIVATE of each listed alarm in turn (clientv3's
 * `AlarmDisarm`); it prints the alarms it cleared. Both print the response
 * in the `-w` format: simple, one `memberID:<decimal> alarm:<TYPE> ` line
 * per alarm; json, `{"alarms":[{"memberID":<n>,"alarm":<number>}]}` (`{}`
 * when there is none); protobuf, the wire bytes; table, exit 4 `table not
 * supported as output format` (after the request, as etcdctl). fields
 * differs from etcdctl 3.4, which panics there (see cli/printer.ts).
 * Arguments are refused with exit 128 (`alarm list command accepts no
 * arguments`); server errors exit 1.
 *
 * @module
 */

import { CtlError, ExitCode } from "../exit.ts";
import { type CtlContext, untilDeadline } from "../context.ts";
import type { FlagSpec } from "../flags.ts";

/** The subcommands, as etcdctl lists them. */
export const SUBCOMMANDS = ["disarm", "list"] as const;

/** Flags of `alarm` (none besides the global ones). */
export const flags: readonly FlagSpec[] = [];

/** Runs `alarm <sub>`. */
export async function run(ctx: CtlContext, args: string[], sub: string): Promise<void> {
  if (args.length !== 0) {
    throw new CtlError(ExitCode.BadArgs, `alarm ${sub} command accepts no arguments`);
  }
  const resp = await untilDeadline(
    ctx.commandTimeout,
    true,
    (timeout) =>
      sub === "disarm"
        ? ctx.client().alarmDisarm({}, { timeout })
        : ctx.client().alarmList({ timeout }),
  );
  ctx.printer.alarm(resp);
}
