/**
 * `snapshot save <file>`, `snapshot restore <file> [flags]`,
 * `snapshot status <file>`: etcdctl 3.4's snapshot commands, plus etcd
 * 3.5's `--bump-revision` and `--mark-compacted` on restore.
 *
 * - save: streams Maintenance.Snapshot from the one `--endpoints` member
 *   (`POST /v3/maintenance/snapshot`) into `<file>.part` (mode 0600), checks
 *   the SHA-256 at its end, syncs and renames it to `<file>`; stdout
 *   `Snapshot saved at <file>`. Works against cairn and etcd alike.
 * - restore: builds a new member data dir from a cairn or an etcd snapshot
 *   file (server/snapshot/restore.ts); nothing on stdout.
 * - status: hash, revision, total keys and total size of a cairn snapshot
 *   (cairn's figures) or an etcd one (etcdctl's), in `-w
 *   simple|json|fields|table` as etcdctl prints them.
 *
 * On stderr, the log lines etcdctl's zap logger writes (same messages and
 * fields, JSON, without Go's `caller`), and on a terminal a progress bar
 * and a summary line (cli/progress.ts). Exit codes as etcdctl's: 128 for a
 * wrong number of arguments or bad flags, 5 when save fails, 1 when restore
 * or status fails, 4 for an output format status cannot print.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { CtlError, ExitCode } from "../exit.ts";
import type { CtlContext, CtlIO } from "../context.ts";
import type { FlagSpec } from "../flags.ts";
import { hexU64, humanizeBytes } from "../go_format.ts";
import { rateSummary, startProgress } from "../progress.ts";
import { checkPeerURLs } from "./member.ts";
import { goOsError } from "../../core/go_os_error.ts";

/** The subcommands, as etcdctl lists them. */
export const SUBCOMMANDS = ["restore", "save", "status"] as const;

/** Flags of `snapshot` itself (none besides the global ones). */
export const flags: readonly FlagSpec[] = [];

/** Flags by subcommand, with etcdctl's defaults. */
export const SUB_FLAGS: Readonly<Record<string, readonly FlagSpec[]>> = {
  "restore": [
    { name: "data-dir", kind: "string", default: "" },
    { name: "wal-dir", kind: "string", default: "" },
    { name: "initial-cluster", kind: "string", default: "default=http://localhost:2380" },
    { name: "initial-cluster-token", kind: "string", default: "etcd-cluster" },
    { name: "initial-advertise-peer-urls", kind: "string", default: "http://localhost:2380" },
    { name: "name", kind: "string", default: "default" },
    { name: "skip-hash-check", kind: "bool", default: false },
    { name: "bump-revision", kind: "uint", default: 0n },
    { name: "mark-compacted", kind: "bool", default: false },
  ],
};

/** Bytes of the SHA-256 a saved snapshot ends with. */
const HASH_BYTES = 32;

/**
 * One line of etcdctl's zap production logger on stderr: level info, `ts`
 * in seconds since the epoch (clientv3's own lines use ISO time: `iso`).
 */
function logLine(io: CtlIO, msg: string, fields: Record<string, unknown> = {}, iso = false): void {
  const ts = iso ? new Date().toISOString() : Date.now() / 1000;
  io.stderr.write(JSON.stringify({ level: "info", ts, msg, ...fields }) + "\n");
}

/** Runs `snapshot <sub>`. */
export async function run(ctx: CtlContext, args: string[], sub: string): Promise<void> {
  switch (sub) {
    case "save":
      return await save(ctx, args);
    case "restore":
      return await restore(ctx, args);
    case "status":
      return await status(ctx, args);
  }
}

/** Go's text for an OS error (`open f: no such file or directory`). */
function osText(op: string, path: string, err: unknown): string {
  return `${op} ${path}: ${goOsError(err)}`;
}

async function save(ctx: CtlContext, args: string[]): Promise<void> {
  if (args.length !== 1) {
    throw new CtlError(ExitCode.BadArgs, "snapshot save expects one argument");
  }
  const fail = (msg: string) => new CtlError(ExitCode.Interrupted, msg);
  if (ctx.endpoints.length !== 1) {
    throw fail(
      `snapshot must be requested to one selected node, not multiple [${ctx.endpoints.join(" ")}]`,
    );
  }
  const io = ctx.io;
  const path = args[0];
  const part = path + ".part";
  let file: Deno.FsFile;
  try {
    file = await Deno.open(part, { write: true, create: true, truncate: true, mode: 0o600 });
  } catch (err) {
    throw fail(`could not open ${part} (${osText("open", part, err)})`);
  }
  logLine(io, "created temporary db file", { path: part });
  const endpoint = ctx.endpoints[0];
  const started = performance.now();
  const progress = startProgress(io, "Saving snapshot", "bytes");
  // No deadline unless --command-timeout is given, as etcdctl.
  const signal = ctx.changed.has("command-timeout")
    ? AbortSignal.timeout(ctx.commandTimeout)
    : undefined;
  let size = 0;
  try {
    const hash = createHash("sha256");
    let held: Uint8Array | undefined; // the last blob: the digest once the stream ends
    let total = 0;
    let opened = false;
    const write = async (b: Uint8Array) => {
      let n = 0;
      while (n < b.length) n += await file.write(b.subarray(n));
    };
    for await (const msg of ctx.clientFor(endpoint).snapshot({ signal })) {
      if (!opened) {
        opened = true;
        logLine(io, "opened snapshot stream; downloading", {}, true);
        logLine(io, "fetching snapshot", { endpoint });
        total = msg.remaining_bytes + msg.blob.length + HASH_BYTES;
      }
      if (held !== undefined) {
        hash.update(held);
        await write(held);
        size += held.length;
      }
      held = msg.blob;
      progress.update(size + held.length, Math.max(total, size + held.length));
    }
    if (signal?.aborted) throw fail("context deadline exceeded");
    if (held !== undefined) {
      await write(held);
      size += held.length;
    }
    if (opened) logLine(io, "completed snapshot read; closing", {}, true);
    if (size % 512 !== HASH_BYTES) throw fail(`sha256 checksum not found [bytes: ${size}]`);
    const digest = new Uint8Array(hash.digest());
    if (!digest.every((b, i) => b === held![i])) {
      throw fail("snapshot's sha256 does not match its data: the transfer was damaged");
    }
    await file.sync();
    file.close();
    logLine(io, "fetched snapshot", {
      endpoint,
      size: humanizeBytes(size),
      took: (performance.now() - started) / 1000,
    });
    try {
      await Deno.rename(part, path);
    } catch (err) {
      throw fail(`could not rename ${part} to ${path} (${osText("rename", part, err)})`);
    }
  } catch (err) {
    progress.abort();
    try {
      file.close();
    } catch {
      // closed already
    }
    await Deno.remove(part).catch(() => {});
    if (err instanceof CtlError) throw err;
    if (signal?.aborted) throw fail("context deadline exceeded");
    throw fail((err as Error).message);
  }
  logLine(io, "saved", { path });
  progress.finish(`Snapshot saved: ${rateSummary(size, "bytes", started)}`);
  io.stdout.write(`Snapshot saved at ${path}\n`);
}

/** Parses `--initial-cluster` as etcd's `types.NewURLsMap`: `name=url,…`, URLs checked. */
function parseInitialCluster(value: string): Map<string, URL[]> {
  const cluster = new Map<string, URL[]>();
  for (const part of value.split(",")) {
    const eq = part.indexOf("=");
    const name = eq < 0 ? part : part.slice(0, eq);
    const url = eq < 0 ? "" : part.slice(eq + 1);
    checkPeerURLs([url]);
    cluster.set(name, [...(cluster.get(name) ?? []), new URL(url.trim())]);
  }
  return cluster;
}

async function restore(ctx: CtlContext, args: string[]): Promise<void> {
  if (args.length !== 1) {
    throw new CtlError(ExitCode.BadArgs, "snapshot restore requires exactly one argument");
  }
  const f = ctx.flags;
  const bump = f.get("bump-revision") as bigint;
  const mark = f.get("mark-compacted") as boolean;
  if ((bump === 0n && mark) || (bump > 0n && !mark)) {
    throw new CtlError(ExitCode.BadArgs, "--mark-compacted required if --revision-bump > 0");
  }
  if (bump > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new CtlError(ExitCode.BadArgs, `--bump-revision ${bump} is larger than 2^53 - 1`);
  }
  if (f.get("wal-dir") !== "") {
    throw new CtlError(
      ExitCode.BadArgs,
      "--wal-dir is not supported by cairn: the WAL is always <data-dir>/member/wal",
    );
  }
  const name = f.get("name") as string;
  const dataDir = (f.get("data-dir") as string) || `${name}.etcd`;
  const peerUrls = (f.get("initial-advertise-peer-urls") as string).split(",");
  checkPeerURLs(peerUrls);
  const initialCluster = parseInitialCluster(f.get("initial-cluster") as string);
  const { ConfigError, verifyLocalMember } = await import("../../server/config.ts");
  try {
    verifyLocalMember(name, initialCluster, peerUrls.map((u) => new URL(u.trim())));
  } catch (err) {
    if (err instanceof ConfigError) throw new CtlError(ExitCode.Error, err.message);
    throw err;
  }
  const { restoreSnapshot, SnapshotError } = await import("../../server/snapshot/restore.ts");
  const file = args[0];
  const io = ctx.io;
  const dirs = {
    "wal-dir": `${dataDir}/member/wal`,
    "data-dir": dataDir,
    "snap-dir": `${dataDir}/member/snap`,
  };
  logLine(io, "restoring snapshot", { path: file, ...dirs });
  const started = performance.now();
  const progress = startProgress(io, "Restoring snapshot", "bytes");
  let result;
  try {
    result = await restoreSnapshot(file, {
      dataDir,
      name,
      initialCluster,
      initialClusterToken: f.get("initial-cluster-token") as string,
      skipHashCheck: f.get("skip-hash-check") as boolean,
      bumpRevision: Number(bump),
      markCompacted: mark,
      onProgress: (p) => progress.update(p.bytes, p.totalBytes),
    });
  } catch (err) {
    progress.abort();
    if (err instanceof SnapshotError) throw new CtlError(ExitCode.Error, err.message);
    throw err;
  }
  for (const m of result.membership.members) {
    logLine(io, "added member", {
      "cluster-id": hexU64(result.clusterId),
      "local-member-id": "0",
      "added-peer-id": hexU64(m.id),
      "added-peer-peer-urls": m.peerURLs,
    });
  }
  if (bump > 0n) {
    logLine(io, "bumping latest revision", {
      "latest-revision": result.snapshotRevision,
      "bump-amount": Number(bump),
      "new-latest-revision": result.revision,
    });
    logLine(io, "marking revision compacted", { revision: result.revision });
  }
  logLine(io, "restored snapshot", { path: file, ...dirs });
  progress.finish(
    `Restored ${result.keys} key${result.keys === 1 ? "" : "s"} at revision ` +
      `${result.revision} into ${dataDir}: ` +
      rateSummary(result.bytes, "bytes", started),
  );
}

async function status(ctx: CtlContext, args: string[]): Promise<void> {
  if (args.length !== 1) {
    throw new CtlError(ExitCode.BadArgs, "snapshot status requires exactly one argument");
  }
  const { snapshotStatus, SnapshotError } = await import("../../server/snapshot/restore.ts");
  let s;
  try {
    s = await snapshotStatus(args[0]);
  } catch (err) {
    if (err instanceof SnapshotError) throw new CtlError(ExitCode.Error, err.message);
    throw err;
  }
  ctx.printer.dbStatus(s);
}
