/**
 * `auth enable` and `auth disable`: etcdctl 3.4's commands over the
 * gateway's `/v3/auth/enable` and `/v3/auth/disable`, within
 * `--command-timeout`.
 *
 * enable: when etcd answers `etcdserver: root user does not have root role`,
 * the `root` role is added and granted to `root`, and enable is asked again
 * (etcdctl's loop); prints `Authentication Enabled`. disable prints
 * `Authentication Disabled`. Both print that line in every `-w` format
 * (etcdctl prints it directly). Arguments are refused with exit 128 (`auth
 * enable command does not accept any arguments`); server errors exit 1.
 *
 * @module
 */

import { Errors, EtcdError } from "../../core/errors.ts";
import { CtlError, ExitCode } from "../exit.ts";
import { type CtlContext, untilDeadline } from "../context.ts";
import type { FlagSpec } from "../flags.ts";

/** The subcommands, as etcdctl lists them. */
export const SUBCOMMANDS = ["disable", "enable"] as const;

/** Flags of `auth` (none besides the global ones). */
export const flags: readonly FlagSpec[] = [];

const ROOT_ROLE_MISSING = Errors.RootRoleNotExist().message;

/** AuthEnable, adding the root role to root first when etcd asks for it. */
async function enable(ctx: CtlContext, timeout: number): Promise<void> {
  const client = ctx.client();
  for (;;) {
    try {
      await client.authEnable({ timeout });
      return;
    } catch (e) {
      if (!(e instanceof EtcdError) || e.message !== ROOT_ROLE_MISSING) throw e;
    }
    await client.roleAdd("root", { timeout });
    await client.userGrantRole({ user: "root", role: "root" }, { timeout });
  }
}

/** Runs `auth <sub>`. */
export async function run(ctx: CtlContext, args: string[], sub: string): Promise<void> {
  if (args.length !== 0) {
    throw new CtlError(ExitCode.BadArgs, `auth ${sub} command does not accept any arguments`);
  }
  const end = performance.now() + ctx.commandTimeout;
  const left = () => Math.max(0, end - performance.now());
  if (sub === "enable") {
    await untilDeadline(left(), true, () => enable(ctx, left()));
    ctx.io.stdout.write("Authentication Enabled\n");
  } else {
    await untilDeadline(left(), true, (timeout) => ctx.client().authDisable({ timeout }));
    ctx.io.stdout.write("Authentication Disabled\n");
  }
}
