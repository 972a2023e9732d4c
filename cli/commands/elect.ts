/**
 * `elect [-l] <election-name> [proposal]`, as etcdctl 3.4 runs it, over a
 * session with a 60 s lease kept alive:
 * - with a proposal, campaigns (waiting as long as it takes), prints the
 *   leader's key and value once elected (as `get` would), holds until
 *   SIGINT, then resigns and exits 0; a session lost meanwhile exits 1 with
 *   `elect: session expired`;
 * - with `-l/--listen` and no proposal, prints the leader's key and value
 *   now (or once there is one) and at each change, until SIGINT (exit 0);
 *   when the server ends the observation first it exits 1 with `elect:
 *   observer lost`.
 *
 * Bad arguments exit 128 with etcdctl's messages. SIGINT before elected
 * exits 1 with `context canceled`. As etcdctl, the session's lease is left
 * to expire rather than revoked.
 *
 * @module
 */

import { Election } from "../../client/concurrency.ts";
import { Session } from "../../client/lease.ts";
import type { Client } from "../../client/mod.ts";
import { aborted, type CtlContext, onInterrupt } from "../context.ts";
import { CtlError, ExitCode } from "../exit.ts";
import type { FlagSpec } from "../flags.ts";

/** Flags of `elect`: `-l/--listen`, observation mode. */
export const flags: readonly FlagSpec[] = [
  { name: "listen", short: "l", kind: "bool", default: false },
];

/** Runs `elect`. */
export async function run(ctx: CtlContext, args: string[]): Promise<void> {
  if (args.length !== 1 && args.length !== 2) {
    throw new CtlError(
      ExitCode.BadArgs,
      "elect takes one election name argument and an optional proposal argument",
    );
  }
  const listen = ctx.flags.get("listen") === true;
  if (args.length === 1 && !listen) {
    throw new CtlError(ExitCode.BadArgs, "no proposal argument but -l not set");
  }
  if (args.length === 2 && listen) {
    throw new CtlError(ExitCode.BadArgs, "proposal given but -l is set");
  }
  const client = ctx.client();
  const session = await Session.create(client);
  const interrupt = onInterrupt();
  try {
    const election = new Election(client, session, args[0]);
    if (args.length === 1) await observe(ctx, election, interrupt.signal);
    else await campaign(ctx, client, session, election, args[1], interrupt.signal);
  } finally {
    interrupt.dispose();
    session.orphan();
  }
}

async function observe(ctx: CtlContext, election: Election, signal: AbortSignal): Promise<void> {
  for await (const r of election.observe({ signal })) {
    ctx.printer.get({ header: r.header, kvs: [r.kv], more: false, count: 0 });
  }
  if (!signal.aborted) throw new CtlError(ExitCode.Error, "elect: observer lost");
}

async function campaign(
  ctx: CtlContext,
  client: Client,
  session: Session,
  election: Election,
  proposal: string,
  signal: AbortSignal,
): Promise<void> {
  try {
    await election.campaign(proposal, { signal });
  } catch (e) {
    if (signal.aborted) throw new CtlError(ExitCode.Error, "context canceled");
    throw e;
  }
  ctx.printer.get(await client.get(election.key));
  const lost = session.done.then(() => false, () => true);
  if (await Promise.race([aborted(signal).then(() => false), lost])) {
    throw new CtlError(ExitCode.Error, "elect: session expired");
  }
  await election.resign();
}
