/**
 * `member list`, `member add <name> --peer-urls=… [--learner]`,
 * `member remove <id>`, `member update <id> --peer-urls=…`,
 * `member promote <id>`: etcdctl 3.4's membership commands over the
 * gateway's `/v3/cluster/member/*`, member IDs in hex on the command line
 * and in simple output.
 *
 * Exit codes as etcdctl's: 128 for bad arguments (`member name not
 * provided`, `member ID is not provided`, `bad member ID arg (…), expecting
 * ID in Hex`, `member peer urls not provided`); 1 for invalid peer URLs
 * (checked before sending, as clientv3 does) and server errors; 4 when the
 * output format does not print the response (the change is made first, as
 * in etcdctl).
 *
 * @module
 */

import { CtlError, ExitCode } from "../exit.ts";
import { type CtlContext, untilDeadline } from "../context.ts";
import type { FlagSpec } from "../flags.ts";
import { goQuoteString, parseGoUint64 } from "../go_format.ts";
import { SimplePrinter } from "../printer.ts";

/** The subcommands, as etcdctl lists them. */
export const SUBCOMMANDS = ["add", "list", "promote", "remove", "update"] as const;

/** Flags of `member` itself (none besides the global ones). */
export const flags: readonly FlagSpec[] = [];

/** Flags by subcommand. */
export const SUB_FLAGS: Readonly<Record<string, readonly FlagSpec[]>> = {
  "add": [
    { name: "learner", kind: "bool", default: false },
    { name: "peer-urls", kind: "string", default: "" },
  ],
  "update": [{ name: "peer-urls", kind: "string", default: "" }],
};

const URL_SCHEMES = new Set(["http", "https", "unix", "unixs"]);

/** Whether `host` is what Go's `net.SplitHostPort` accepts (`h:p`, `[v6]:p`; p may be empty). */
function hasHostPort(host: string): boolean {
  if (host.startsWith("[")) {
    const end = host.indexOf("]");
    return end > 0 && host.slice(end + 1).startsWith(":") &&
      !host.slice(end + 2).includes(":") && !host.slice(end + 2).includes("[");
  }
  const colons = host.split(":").length - 1;
  return colons === 1 && !host.includes("[") && !host.includes("]");
}

/**
 * Checks peer URLs as etcd's `types.NewURLs` does before clientv3 sends
 * MemberAdd or MemberUpdate: each (trimmed) must have scheme http, https,
 * unix or unixs, a `host:port` and no path.
 *
 * @throws {CtlError} exit 1 with etcd's text, e.g. `URL scheme must be
 *   http, https, unix, or unixs: foo`, `URL address does not have the form
 *   "host:port": http://h`, `URL must not contain a path: http://h:1/p`.
 */
export function checkPeerURLs(urls: readonly string[]): void {
  const fail = (msg: string): never => {
    throw new CtlError(ExitCode.Error, msg);
  };
  if (urls.length === 0) fail("no valid URLs given");
  for (const raw of urls) {
    const u = raw.trim();
    if ([...u].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) {
      fail(`parse ${goQuoteString(u)}: net/url: invalid control character in URL`);
    }
    const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(u);
    if (scheme === null || !URL_SCHEMES.has(scheme[1].toLowerCase())) {
      fail(`URL scheme must be http, https, unix, or unixs: ${u}`);
    }
    let rest = u.slice(scheme![0].length).replace(/[?#].*$/s, "");
    let host = "";
    if (rest.startsWith("//")) {
      rest = rest.slice(2);
      const slash = rest.indexOf("/");
      const authority = slash < 0 ? rest : rest.slice(0, slash);
      rest = slash < 0 ? "" : rest.slice(slash);
      host = authority.slice(authority.lastIndexOf("@") + 1);
    }
    if (!hasHostPort(host)) fail(`URL address does not have the form "host:port": ${u}`);
    if (rest !== "") fail(`URL must not contain a path: ${u}`);
  }
}

/** etcdctl's member ID argument: hex uint64. */
function memberId(args: string[]): bigint {
  if (args.length !== 1) throw new CtlError(ExitCode.BadArgs, "member ID is not provided");
  try {
    return parseGoUint64(args[0], 16);
  } catch (e) {
    throw new CtlError(
      ExitCode.BadArgs,
      `bad member ID arg (${(e as Error).message}), expecting ID in Hex`,
    );
  }
}

/** `--peer-urls` split on commas, or etcdctl's error when absent. */
function peerURLs(ctx: CtlContext): { raw: string; urls: string[] } {
  const raw = ctx.flags.get("peer-urls") as string;
  if (raw.length === 0) throw new CtlError(ExitCode.BadArgs, "member peer urls not provided");
  return { raw, urls: raw.split(",") };
}

async function add(ctx: CtlContext, args: string[]): Promise<void> {
  if (args.length < 1) throw new CtlError(ExitCode.BadArgs, "member name not provided");
  if (args.length > 1) {
    let msg = "too many arguments";
    for (const a of args) {
      if (a.toLowerCase().startsWith("http")) msg += `, did you mean --peer-urls=${a}`;
    }
    throw new CtlError(ExitCode.BadArgs, msg);
  }
  const name = args[0];
  const { raw, urls } = peerURLs(ctx);
  checkPeerURLs(urls);
  const isLearner = ctx.flags.get("learner") === true;
  const resp = await untilDeadline(
    ctx.commandTimeout,
    false,
    (timeout) =>
      ctx.client().memberAdd({ peerURLs: urls, ...(isLearner ? { isLearner } : {}) }, {
        timeout,
      }),
  );
  ctx.printer.memberAdd(resp);
  if (!(ctx.printer instanceof SimplePrinter)) return;
  const newId = resp.member?.ID;
  const conf: string[] = [];
  for (const m of resp.members) {
    for (const u of m.peerURLs) conf.push(`${m.ID === newId ? name : m.name}=${u}`);
  }
  ctx.io.stdout.write(
    `\nETCD_NAME=${goQuoteString(name)}\n` +
      `ETCD_INITIAL_CLUSTER=${goQuoteString(conf.join(","))}\n` +
      `ETCD_INITIAL_ADVERTISE_PEER_URLS=${goQuoteString(raw)}\n` +
      `ETCD_INITIAL_CLUSTER_STATE="existing"\n`,
  );
}

async function remove(ctx: CtlContext, args: string[]): Promise<void> {
  const id = memberId(args);
  const resp = await untilDeadline(
    ctx.commandTimeout,
    false,
    (timeout) => ctx.client().memberRemove({ ID: id }, { timeout }),
  );
  ctx.printer.memberChanged("removed from", id, resp);
}

async function update(ctx: CtlContext, args: string[]): Promise<void> {
  const id = memberId(args);
  const { urls } = peerURLs(ctx);
  checkPeerURLs(urls);
  const resp = await untilDeadline(
    ctx.commandTimeout,
    true,
    (timeout) => ctx.client().memberUpdate({ ID: id, peerURLs: urls }, { timeout }),
  );
  ctx.printer.memberChanged("updated in", id, resp);
}

async function promote(ctx: CtlContext, args: string[]): Promise<void> {
  const id = memberId(args);
  const resp = await untilDeadline(
    ctx.commandTimeout,
    false,
    (timeout) => ctx.client().memberPromote({ ID: id }, { timeout }),
  );
  ctx.printer.memberChanged("promoted in", id, resp);
}

async function list(ctx: CtlContext): Promise<void> {
  const resp = await untilDeadline(
    ctx.commandTimeout,
    true,
    (timeout) => ctx.client().memberList({ timeout }),
  );
  ctx.printer.memberList(resp);
}

/** Runs `member <sub>`. */
export function run(ctx: CtlContext, args: string[], sub: string): Promise<void> {
  switch (sub) {
    case "add":
      return add(ctx, args);
    case "remove":
      return remove(ctx, args);
    case "update":
      return update(ctx, args);
    case "promote":
      return promote(ctx, args);
    default:
      return list(ctx);
  }
}
