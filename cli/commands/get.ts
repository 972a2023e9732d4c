/**
 * `get [options] <key> [range_end]`.
 *
 * @module
 */

import { CtlError, ExitCode } from "../exit.ts";
import { type CtlContext, untilDeadline } from "../context.ts";
import { buildGet, GET_FLAGS } from "../ops.ts";
import { FieldsPrinter, SimplePrinter } from "../printer.ts";

/** Flags of `get`. */
export const flags = GET_FLAGS;

/** Runs `get`; prints each key and value (simple) or the response (json). */
export async function run(ctx: CtlContext, args: string[]): Promise<void> {
  const op = buildGet(args, ctx.flags);
  const resp = await untilDeadline(
    ctx.commandTimeout,
    true,
    (timeout) => ctx.client().range(op.request, { timeout }),
  );
  if (op.countOnly && !(ctx.printer instanceof FieldsPrinter)) {
    throw new CtlError(ExitCode.BadArgs, "--count-only is only for `--write-out=fields`");
  }
  if (op.printValueOnly) {
    if (!(ctx.printer instanceof SimplePrinter)) {
      throw new CtlError(ExitCode.BadArgs, "print-value-only is only for `--write-out=simple`");
    }
    ctx.printer.valueOnly = true;
  }
  ctx.printer.get(resp);
}
