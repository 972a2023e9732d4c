/**
 * `txn [-i]`: compares, success ops and failure ops read from standard input
 * (see ../txn_grammar.ts); `-i` prints etcdctl's prompts before each part.
 *
 * @module
 */

import { CtlError, ExitCode } from "../exit.ts";
import { type CtlContext, untilDeadline } from "../context.ts";
import type { FlagSpec } from "../flags.ts";
import { readTxn, StreamLineReader } from "../txn_grammar.ts";

/** Flags of `txn`. */
export const flags: readonly FlagSpec[] = [
  { name: "interactive", short: "i", kind: "bool", default: false },
];

/** Runs `txn`; prints SUCCESS or FAILURE and each op's response. */
export async function run(ctx: CtlContext, args: string[]): Promise<void> {
  if (args.length !== 0) {
    throw new CtlError(ExitCode.BadArgs, "txn command does not accept argument");
  }
  const interactive = ctx.flags.get("interactive") === true;
  const reader = new StreamLineReader(ctx.io.stdin());
  let req;
  try {
    req = await readTxn(reader, (text) => {
      if (interactive) ctx.io.stdout.write(text + "\n");
    });
  } finally {
    reader.release();
  }
  const resp = await untilDeadline(
    ctx.commandTimeout,
    false,
    (timeout) => ctx.client().txn(req, { timeout }),
  );
  ctx.printer.txn(resp);
}
