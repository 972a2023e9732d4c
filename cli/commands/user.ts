/**
 * `user add|delete|get|list|passwd|grant-role|revoke-role`: etcdctl 3.4's
 * user commands over the gateway's `/v3/auth/user/*`.
 *
 * - `add <name>` asks for the password twice (`Password of <name>: `,
 *   `Type password of <name> again for confirmation: `; exit 128 `empty
 *   password`, `given passwords are different`); `add <name:password>`
 *   takes it from the argument (exit 128 `empty user name is not allowed`
 *   for `:password`); `--interactive=false` reads one word from stdin;
 *   `--new-user-password p` takes `p` and the argument whole;
 *   `--no-password` adds a user that cannot authenticate with a password.
 * - `passwd <name>` asks as `add` does, or reads a word from stdin with
 *   `--interactive=false`; prints `Password updated`.
 * - `get <name> [--detail]`: the user's roles; with `--detail`, `User:
 *   <name>` and then each role as `role get` prints it.
 *
 * Output in every `-w` format as etcdctl's printers (cli/printer.ts).
 * Exit codes as etcdctl's: 128 for wrong arguments (`user add command
 * requires user name as its argument`, …), 1 for server errors (`Error:
 * etcdserver: user name already exists`). Each request has
 * `--command-timeout` (etcdctl 3.4 waits without a deadline).
 *
 * @module
 */

import { CtlError, ExitCode } from "../exit.ts";
import { type CtlContext, untilDeadline } from "../context.ts";
import type { FlagSpec } from "../flags.ts";
import { askPassword } from "../password.ts";

/** The subcommands, as etcdctl lists them. */
export const SUBCOMMANDS = [
  "add",
  "delete",
  "get",
  "grant-role",
  "list",
  "passwd",
  "revoke-role",
] as const;

/** Flags of `user` itself (none besides the global ones). */
export const flags: readonly FlagSpec[] = [];

/** Flags by subcommand. */
export const SUB_FLAGS: Readonly<Record<string, readonly FlagSpec[]>> = {
  "add": [
    { name: "interactive", kind: "bool", default: true },
    { name: "new-user-password", kind: "string", default: "" },
    { name: "no-password", kind: "bool", default: false },
  ],
  "get": [{ name: "detail", kind: "bool", default: false }],
  "passwd": [{ name: "interactive", kind: "bool", default: true }],
};

function badArgs(msg: string): never {
  throw new CtlError(ExitCode.BadArgs, msg);
}

/**
 * etcdctl's `readPasswordInteractive`: the password twice, which must be
 * equal and not empty.
 *
 * @throws {CtlError} exit 128: `failed to ask password: …`, `empty
 *   password`, `given passwords are different`.
 */
async function readPasswordInteractive(ctx: CtlContext, name: string): Promise<string> {
  const ask = async (prompt: string) => {
    try {
      return await askPassword(ctx.io, ctx.stdinReader, prompt);
    } catch (e) {
      return badArgs(`failed to ask password: ${(e as Error).message}`);
    }
  };
  const first = await ask(`Password of ${name}: `);
  if (first.length === 0) badArgs("empty password");
  const second = await ask(`Type password of ${name} again for confirmation: `);
  if (first !== second) badArgs("given passwords are different");
  return first;
}

/** The password of `user add`/`user passwd`: asked for, or a word of stdin. */
async function newPassword(ctx: CtlContext, name: string): Promise<string> {
  if (ctx.flags.get("interactive") !== false) return await readPasswordInteractive(ctx, name);
  try {
    return await ctx.stdinReader.scanWord();
  } catch (e) {
    return badArgs((e as Error).message);
  }
}

/** Runs `call` within --command-timeout; `idempotent` calls are retried on unreachable endpoints. */
function request<T>(
  ctx: CtlContext,
  idempotent: boolean,
  call: (timeout: number) => Promise<T>,
): Promise<T> {
  return untilDeadline(ctx.commandTimeout, idempotent, call);
}

async function add(ctx: CtlContext, args: string[]): Promise<void> {
  if (args.length !== 1) badArgs("user add command requires user name as its argument");
  let name = args[0];
  let password = "";
  const noPassword = ctx.flags.get("no-password") === true;
  const fromFlag = ctx.flags.get("new-user-password") as string;
  if (!noPassword) {
    if (fromFlag !== "") password = fromFlag;
    else {
      const colon = name.indexOf(":");
      if (colon < 0) password = await newPassword(ctx, name);
      else {
        password = name.slice(colon + 1);
        name = name.slice(0, colon);
        if (name.length === 0) badArgs("empty user name is not allowed");
      }
    }
  }
  const resp = await request(
    ctx,
    false,
    (timeout) =>
      ctx.client().userAdd({ name, password, options: { no_password: noPassword } }, { timeout }),
  );
  ctx.printer.authChange(`User ${name} created`, resp);
}

async function del(ctx: CtlContext, args: string[]): Promise<void> {
  if (args.length !== 1) badArgs("user delete command requires user name as its argument");
  const resp = await request(
    ctx,
    false,
    (timeout) => ctx.client().userDelete(args[0], { timeout }),
  );
  ctx.printer.authChange(`User ${args[0]} deleted`, resp);
}

async function get(ctx: CtlContext, args: string[]): Promise<void> {
  if (args.length !== 1) badArgs("user get command requires user name as its argument");
  const name = args[0];
  const resp = await request(ctx, true, (timeout) => ctx.client().userGet(name, { timeout }));
  if (ctx.flags.get("detail") !== true) {
    ctx.printer.userGet(name, resp);
    return;
  }
  // etcdctl prints these lines itself, whatever the output format.
  ctx.io.stdout.write(`User: ${name}\n`);
  for (const role of resp.roles) {
    ctx.io.stdout.write("\n");
    const perms = await request(ctx, true, (timeout) => ctx.client().roleGet(role, { timeout }));
    ctx.printer.roleGet(role, perms);
  }
}

async function list(ctx: CtlContext, args: string[]): Promise<void> {
  if (args.length !== 0) badArgs("user list command requires no arguments");
  ctx.printer.userList(await request(ctx, true, (timeout) => ctx.client().userList({ timeout })));
}

async function passwd(ctx: CtlContext, args: string[]): Promise<void> {
  if (args.length !== 1) badArgs("user passwd command requires user name as its argument");
  const password = await newPassword(ctx, args[0]);
  const resp = await request(
    ctx,
    true,
    (timeout) => ctx.client().userChangePassword({ name: args[0], password }, { timeout }),
  );
  ctx.printer.authChange("Password updated", resp);
}

async function grantRole(ctx: CtlContext, args: string[]): Promise<void> {
  if (args.length !== 2) {
    badArgs("user grant command requires user name and role name as its argument");
  }
  const [user, role] = args;
  const resp = await request(
    ctx,
    true,
    (timeout) => ctx.client().userGrantRole({ user, role }, { timeout }),
  );
  ctx.printer.authChange(`Role ${role} is granted to user ${user}`, resp);
}

async function revokeRole(ctx: CtlContext, args: string[]): Promise<void> {
  if (args.length !== 2) {
    badArgs("user revoke-role requires user name and role name as its argument");
  }
  const [name, role] = args;
  const resp = await request(
    ctx,
    false,
    (timeout) => ctx.client().userRevokeRole({ name, role }, { timeout }),
  );
  ctx.printer.authChange(`Role ${role} is revoked from user ${name}`, resp);
}

/** Runs `user <sub>`. */
export function run(ctx: CtlContext, args: string[], sub: string): Promise<void> {
  switch (sub) {
    case "add":
      return add(ctx, args);
    case "delete":
      return del(ctx, args);
    case "get":
      return get(ctx, args);
    case "list":
      return list(ctx, args);
    case "passwd":
      return passwd(ctx, args);
    case "grant-role":
      return grantRole(ctx, args);
    default:
      return revokeRole(ctx, args);
  }
}
