/**
 * `del [options] <key> [range_end]`.
 *
 * @module
 */

import { type CtlContext, untilDeadline } from "../context.ts";
import { buildDel, DEL_FLAGS } from "../ops.ts";

/** Flags of `del`. */
export const flags = DEL_FLAGS;

/** Runs `del`; prints the number deleted (and the pairs with `--prev-kv`). */
export async function run(ctx: CtlContext, args: string[]): Promise<void> {
  const req = buildDel(args, ctx.flags);
  const resp = await untilDeadline(
    ctx.commandTimeout,
    false,
    (timeout) => ctx.client().deleteRange(req, { timeout }),
  );
  ctx.printer.del(resp);
}
