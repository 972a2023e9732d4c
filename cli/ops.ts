/**
 * The put, get and del argument grammar shared by the top-level commands and
 * by txn request lines (etcdctl's `getPutOp`, `getGetOp`, `getDelOp`): flags
 * and positional arguments in, a KV request out, with etcdctl's checks and
 * error text, plus clientv3's option rules (prefix ends, `--from-key`, sort).
 *
 * @module
 */

import type {
  DeleteRangeRequest,
  PutRequest,
  RangeRequest,
  SortOrder,
  SortTarget,
} from "../core/api/types.ts";
import { CtlError, ExitCode } from "./exit.ts";
import type { FlagSpec, FlagValue } from "./flags.ts";
import { parseGoInt64 } from "./go_format.ts";
import { prefixRangeEnd } from "../client/mod.ts";

const enc = new TextEncoder();

/** Flags of `put`. */
export const PUT_FLAGS: readonly FlagSpec[] = [
  { name: "lease", kind: "string", default: "0" },
  { name: "prev-kv", kind: "bool", default: false },
  { name: "ignore-value", kind: "bool", default: false },
  { name: "ignore-lease", kind: "bool", default: false },
];

/** Flags of `get`. `--count-only` is etcdctl 3.5's. */
export const GET_FLAGS: readonly FlagSpec[] = [
  { name: "consistency", kind: "string", default: "l" },
  { name: "order", kind: "string", default: "" },
  { name: "sort-by", kind: "string", default: "" },
  { name: "limit", kind: "int", default: 0n },
  { name: "prefix", kind: "bool", default: false },
  { name: "from-key", kind: "bool", default: false },
  { name: "rev", kind: "int", default: 0n },
  { name: "keys-only", kind: "bool", default: false },
  { name: "count-only", kind: "bool", default: false },
  { name: "print-value-only", kind: "bool", default: false },
];

/** Flags of `del`. */
export const DEL_FLAGS: readonly FlagSpec[] = [
  { name: "prefix", kind: "bool", default: false },
  { name: "prev-kv", kind: "bool", default: false },
  { name: "from-key", kind: "bool", default: false },
];

type Values = ReadonlyMap<string, FlagValue>;

/**
 * `put <key> [value]`: a PutRequest. `stdinValue` is the value read from
 * standard input when only the key was given (undefined: none available).
 *
 * @throws {CtlError} exit 128 with etcdctl's text on bad arguments.
 */
export function buildPut(
  args: readonly string[],
  flags: Values,
  stdinValue?: Uint8Array,
): PutRequest {
  if (args.length === 0) {
    throw new CtlError(
      ExitCode.BadArgs,
      "put command needs 1 argument and input from stdin or 2 arguments",
    );
  }
  const ignoreValue = flags.get("ignore-value") === true;
  if (ignoreValue && args.length > 1) {
    throw new CtlError(
      ExitCode.BadArgs,
      "put command needs only 1 argument when 'ignore-value' is set",
    );
  }
  let value: Uint8Array = new Uint8Array();
  if (!ignoreValue) {
    if (args.length > 1) value = enc.encode(args[1]);
    else if (stdinValue !== undefined && stdinValue.length > 0) value = stdinValue;
    else {
      throw new CtlError(
        ExitCode.BadArgs,
        "put command needs 1 argument and input from stdin or 2 arguments",
      );
    }
  }
  let lease: bigint;
  try {
    lease = parseGoInt64(flags.get("lease") as string, 16);
  } catch (e) {
    throw new CtlError(
      ExitCode.BadArgs,
      `bad lease ID (${(e as Error).message}), expecting ID in Hex`,
    );
  }
  const req: PutRequest = { key: enc.encode(args[0]), value };
  if (lease !== 0n) req.lease = lease;
  if (flags.get("prev-kv") === true) req.prev_kv = true;
  if (ignoreValue) req.ignore_value = true;
  if (flags.get("ignore-lease") === true) req.ignore_lease = true;
  return req;
}

/** What `get` asks for and how to print it. */
export interface GetOp {
  request: RangeRequest;
  printValueOnly: boolean;
  countOnly: boolean;
}

/**
 * `get <key> [range_end]`: a RangeRequest, built as etcdctl 3.4's `getGetOp`
 * with clientv3's `OpGet` (KEY/ASCEND sort collapses to NONE).
 *
 * @throws {CtlError} exit 128 on bad arguments, exit 4 on a bad
 * `--consistency`, `--order` or `--sort-by` value.
 */
export function buildGet(args: readonly string[], flags: Values): GetOp {
  if (args.length === 0) {
    throw new CtlError(
      ExitCode.BadArgs,
      "get command needs one argument as key and an optional argument as range_end",
    );
  }
  const prefix = flags.get("prefix") === true;
  const fromKey = flags.get("from-key") === true;
  const keysOnly = flags.get("keys-only") === true;
  const countOnly = flags.get("count-only") === true;
  if (prefix && fromKey) {
    throw new CtlError(
      ExitCode.BadArgs,
      "`--prefix` and `--from-key` cannot be set at the same time, choose one",
    );
  }
  if (keysOnly && countOnly) {
    throw new CtlError(
      ExitCode.BadArgs,
      "`--keys-only` and `--count-only` cannot be set at the same time, choose one",
    );
  }
  const request: RangeRequest = { key: enc.encode(args[0]) };
  const consistency = flags.get("consistency") as string;
  if (consistency === "s") request.serializable = true;
  else if (consistency !== "l") {
    throw new CtlError(ExitCode.BadFeature, `unknown consistency flag "${consistency}"`);
  }
  if (args.length > 1) request.range_end = rangeEndArg(args[1], prefix, fromKey);
  const limit = Number(flags.get("limit") as bigint);
  if (limit !== 0) request.limit = limit;
  const rev = Number(flags.get("rev") as bigint);
  if (rev > 0) request.revision = rev;

  const orderFlag = flags.get("order") as string;
  let order: SortOrder = "NONE";
  switch (orderFlag.toUpperCase()) {
    case "ASCEND":
      order = "ASCEND";
      break;
    case "DESCEND":
      order = "DESCEND";
      break;
    case "":
      break;
    default:
      throw new CtlError(ExitCode.BadFeature, `bad sort order ${orderFlag}`);
  }
  const targetFlag = flags.get("sort-by") as string;
  const targets: Record<string, SortTarget> = {
    CREATE: "CREATE",
    KEY: "KEY",
    MODIFY: "MOD",
    VALUE: "VALUE",
    VERSION: "VERSION",
    "": "KEY",
  };
  const target = targets[targetFlag.toUpperCase()];
  if (target === undefined) {
    throw new CtlError(ExitCode.BadFeature, `bad sort target ${targetFlag}`);
  }
  if (target === "KEY" && order === "ASCEND") order = "NONE";
  if (order !== "NONE") request.sort_order = order;
  if (target !== "KEY") request.sort_target = target;

  if (prefix) applyPrefix(request);
  if (fromKey) applyFromKey(request);
  if (keysOnly) request.keys_only = true;
  if (countOnly) request.count_only = true;
  return {
    request,
    printValueOnly: flags.get("print-value-only") === true,
    countOnly,
  };
}

/** clientv3 `WithPrefix`, with etcdctl's empty-key rule (then: every key). */
function applyPrefix(r: { key: Uint8Array; range_end?: Uint8Array }): void {
  if (r.key.length === 0) {
    r.key = new Uint8Array([0]);
    r.range_end = new Uint8Array([0]);
  } else {
    r.range_end = prefixRangeEnd(r.key);
  }
}

/** clientv3 `WithFromKey`: range_end `\0`; an empty key becomes `\0`. */
function applyFromKey(r: { key: Uint8Array; range_end?: Uint8Array }): void {
  if (r.key.length === 0) r.key = new Uint8Array([0]);
  r.range_end = new Uint8Array([0]);
}

/**
 * `del <key> [range_end]`: a DeleteRangeRequest, as etcdctl's `getDelOp`.
 *
 * @throws {CtlError} exit 128 on bad arguments.
 */
export function buildDel(args: readonly string[], flags: Values): DeleteRangeRequest {
  if (args.length === 0 || args.length > 2) {
    throw new CtlError(
      ExitCode.BadArgs,
      "del command needs one argument as key and an optional argument as range_end",
    );
  }
  const prefix = flags.get("prefix") === true;
  const fromKey = flags.get("from-key") === true;
  if (prefix && fromKey) {
    throw new CtlError(
      ExitCode.BadArgs,
      "`--prefix` and `--from-key` cannot be set at the same time, choose one",
    );
  }
  const request: DeleteRangeRequest = { key: enc.encode(args[0]) };
  if (args.length > 1) request.range_end = rangeEndArg(args[1], prefix, fromKey);
  if (prefix) applyPrefix(request);
  if (flags.get("prev-kv") === true) request.prev_kv = true;
  if (fromKey) applyFromKey(request);
  return request;
}

/**
 * The explicit range end of `get`/`del` (their second argument), which
 * etcdctl refuses together with `--prefix` or `--from-key`.
 *
 * @throws {CtlError} exit 128 when combined with `--prefix` or `--from-key`.
 */
function rangeEndArg(arg: string, prefix: boolean, fromKey: boolean): Uint8Array {
  if (prefix || fromKey) {
    throw new CtlError(
      ExitCode.BadArgs,
      "too many arguments, only accept one argument when `--prefix` or `--from-key` is set",
    );
  }
  return enc.encode(arg);
}
