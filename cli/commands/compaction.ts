/**
 * `compaction [--physical] <revision>`.
 *
 * @module
 */

import { CtlError, ExitCode } from "../exit.ts";
import { type CtlContext, untilDeadline } from "../context.ts";
import type { FlagSpec } from "../flags.ts";
import { parseGoInt64 } from "../go_format.ts";

/** Flags of `compaction`. */
export const flags: readonly FlagSpec[] = [
  { name: "physical", kind: "bool", default: false },
];

/** Runs `compaction`; prints `compacted revision N`. */
export async function run(ctx: CtlContext, args: string[]): Promise<void> {
  if (args.length !== 1) {
    throw new CtlError(ExitCode.BadArgs, "compaction command needs 1 argument");
  }
  let rev: number;
  try {
    rev = Number(parseGoInt64(args[0]));
  } catch (e) {
    throw new CtlError(ExitCode.Error, (e as Error).message);
  }
  const physical = ctx.flags.get("physical") === true;
  await untilDeadline(
    ctx.commandTimeout,
    false,
    (timeout) =>
      ctx.client().compact({ revision: rev, ...(physical ? { physical } : {}) }, { timeout }),
  );
  ctx.io.stdout.write(`compacted revision ${rev}\n`);
}
