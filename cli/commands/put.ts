/**
 * `put [options] <key> <value>`: value from standard input when omitted.
 *
 * @module
 */

import { type CtlContext, readAll, untilDeadline } from "../context.ts";
import { buildPut, PUT_FLAGS } from "../ops.ts";

/** Flags of `put`. */
export const flags = PUT_FLAGS;

/** Runs `put`; prints `OK` (and the previous pair with `--prev-kv`). */
export async function run(ctx: CtlContext, args: string[]): Promise<void> {
  let stdin: Uint8Array | undefined;
  if (args.length === 1 && ctx.flags.get("ignore-value") !== true) {
    stdin = await readAll(ctx.io.stdin());
  }
  const req = buildPut(args, ctx.flags, stdin);
  const resp = await untilDeadline(
    ctx.commandTimeout,
    false,
    (timeout) => ctx.client().put(req, { timeout }),
  );
  ctx.printer.put(resp);
}
