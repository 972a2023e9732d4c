/**
 * `role add|delete|get|list|grant-permission|revoke-permission`: etcdctl
 * 3.4's role commands over the gateway's `/v3/auth/role/*`.
 *
 * Permissions (etcdctl's `permRange`): `<key>` alone is that key;
 * `<key> <end>` the range [key, end); `--prefix` every key starting with
 * key; `--from-key` every key ≥ key (range_end `"\0"`). An empty key means
 * key `"\0"`: alone, the key `"\0"`; with `--prefix` or `--from-key`, every
 * key. The permission type of grant-permission is `read`, `write` or
 * `readwrite` (any case).
 *
 * Output in every `-w` format as etcdctl's printers (cli/printer.ts);
 * simple: `Role r created`, `Role r updated`, `Permission of range [a, b)
 * is revoked from role r`, … Exit codes as etcdctl's: 128 for wrong
 * arguments (`role grant command requires role name, permission type, and
 * key [endkey] as its argument`, `invalid permission type: x`, `--from-key
 * and --prefix flags are mutually exclusive`, `unexpected endkey argument
 * with --prefix flag`), 1 for server errors (`Error: etcdserver: role name
 * not found`). Each request has `--command-timeout` (etcdctl 3.4 waits
 * without a deadline).
 *
 * @module
 */

import { prefixRangeEnd } from "../../client/mod.ts";
import type { PermissionType } from "../../core/api/types.ts";
import { CtlError, ExitCode } from "../exit.ts";
import { type CtlContext, untilDeadline } from "../context.ts";
import type { FlagSpec } from "../flags.ts";
import { concatBytes } from "../printer.ts";

/** The subcommands, as etcdctl lists them. */
export const SUBCOMMANDS = [
  "add",
  "delete",
  "get",
  "grant-permission",
  "list",
  "revoke-permission",
] as const;

/** Flags of `role` itself (none besides the global ones). */
export const flags: readonly FlagSpec[] = [];

const RANGE_FLAGS: readonly FlagSpec[] = [
  { name: "from-key", kind: "bool", default: false },
  { name: "prefix", kind: "bool", default: false },
];

/** Flags by subcommand. */
export const SUB_FLAGS: Readonly<Record<string, readonly FlagSpec[]>> = {
  "grant-permission": RANGE_FLAGS,
  "revoke-permission": RANGE_FLAGS,
};

const enc = new TextEncoder();
const ZERO = new Uint8Array([0]);

function badArgs(msg: string): never {
  throw new CtlError(ExitCode.BadArgs, msg);
}

/**
 * clientv3's `StrToPermissionType`: read, write or readwrite, any case.
 *
 * @throws {CtlError} exit 128 `invalid permission type: <s>`.
 */
export function permissionType(s: string): PermissionType {
  const t = s.toUpperCase();
  if (t === "READ" || t === "WRITE" || t === "READWRITE") return t;
  return badArgs(`invalid permission type: ${s}`);
}

/**
 * etcdctl's `permRange`: the key and range_end a permission covers, from
 * `[key, end?]` and the --prefix and --from-key flags. An empty key is
 * `"\0"`, and with either flag covers every key (its end argument, if any,
 * is ignored, as etcdctl does).
 *
 * @throws {CtlError} exit 128: `--from-key and --prefix flags are mutually
 *   exclusive`; `unexpected endkey argument with --prefix flag` (or
 *   `--from-key`).
 */
export function permRange(
  args: readonly string[],
  prefix: boolean,
  fromKey: boolean,
): { key: Uint8Array; rangeEnd: Uint8Array } {
  const exclusive = "--from-key and --prefix flags are mutually exclusive";
  if (args[0].length === 0) {
    if (prefix && fromKey) badArgs(exclusive);
    return { key: ZERO, rangeEnd: prefix || fromKey ? ZERO : new Uint8Array() };
  }
  const key = enc.encode(args[0]);
  if (args.length === 1) {
    if (prefix && fromKey) badArgs(exclusive);
    if (prefix) return { key, rangeEnd: prefixRangeEnd(key) };
    return { key, rangeEnd: fromKey ? ZERO : new Uint8Array() };
  }
  if (prefix) badArgs("unexpected endkey argument with --prefix flag");
  if (fromKey) badArgs("unexpected endkey argument with --from-key flag");
  return { key, rangeEnd: enc.encode(args[1]) };
}

/** Runs `call` within --command-timeout; `idempotent` calls are retried on unreachable endpoints. */
function request<T>(
  ctx: CtlContext,
  idempotent: boolean,
  call: (timeout: number) => Promise<T>,
): Promise<T> {
  return untilDeadline(ctx.commandTimeout, idempotent, call);
}

function oneRole(sub: string, args: string[]): string {
  if (args.length !== 1) badArgs(`role ${sub} command requires role name as its argument`);
  return args[0];
}

/** etcdctl's line for a revoked permission: the key as given, the range end as computed. */
function revokedText(role: string, key: string, end: Uint8Array): Uint8Array {
  if (end.length === 0) return enc.encode(`Permission of key ${key} is revoked from role ${role}`);
  if (end.length === 1 && end[0] === 0) {
    return enc.encode(`Permission of range [${key}, <open ended> is revoked from role ${role}`);
  }
  return concatBytes([`Permission of range [${key}, `, end, `) is revoked from role ${role}`]);
}

/** Runs `role <sub>`. */
export async function run(ctx: CtlContext, args: string[], sub: string): Promise<void> {
  const prefix = ctx.flags.get("prefix") === true;
  const fromKey = ctx.flags.get("from-key") === true;
  switch (sub) {
    case "add": {
      const role = oneRole(sub, args);
      const resp = await request(ctx, false, (timeout) => ctx.client().roleAdd(role, { timeout }));
      return ctx.printer.authChange(`Role ${role} created`, resp);
    }
    case "delete": {
      const role = oneRole(sub, args);
      const resp = await request(ctx, false, (t) => ctx.client().roleDelete(role, { timeout: t }));
      return ctx.printer.authChange(`Role ${role} deleted`, resp);
    }
    case "get": {
      const role = oneRole(sub, args);
      const resp = await request(ctx, true, (timeout) => ctx.client().roleGet(role, { timeout }));
      return ctx.printer.roleGet(role, resp);
    }
    case "list": {
      if (args.length !== 0) badArgs("role list command requires no arguments");
      const resp = await request(ctx, true, (timeout) => ctx.client().roleList({ timeout }));
      return ctx.printer.roleList(resp);
    }
    case "grant-permission": {
      if (args.length < 3) {
        badArgs(
          "role grant command requires role name, permission type, and key [endkey] as its argument",
        );
      }
      const permType = permissionType(args[1]);
      const { key, rangeEnd } = permRange(args.slice(2), prefix, fromKey);
      const resp = await request(
        ctx,
        true,
        (timeout) =>
          ctx.client().roleGrantPermission(
            { name: args[0], perm: { permType, key, range_end: rangeEnd } },
            { timeout },
          ),
      );
      return ctx.printer.authChange(`Role ${args[0]} updated`, resp);
    }
    default: {
      if (args.length < 2) {
        badArgs(
          "role revoke-permission command requires role name and key [endkey] as its argument",
        );
      }
      const { key, rangeEnd } = permRange(args.slice(1), prefix, fromKey);
      const resp = await request(
        ctx,
        false,
        (timeout) =>
          ctx.client().roleRevokePermission(
            { role: args[0], key, range_end: rangeEnd },
            { timeout },
          ),
      );
      return ctx.printer.authChange(revokedText(args[0], args[1], rangeEnd), resp);
    }
  }
}
