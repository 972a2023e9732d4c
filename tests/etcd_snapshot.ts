/**
 * Test helper: a real etcd 3.4 with a history written through its JSON
 * gateway, and `etcdctl snapshot save` of it, for the tests of the bbolt
 * reader and of the migration from etcd.
 *
 * @module
 */
import { HAVE_ETCD, runs, type ServerProcess, startEtcd } from "./servers.ts";

/** True when both `etcd` and `etcdctl` run (the etcd snapshot tests need both). */
export const HAVE_ETCD_AND_ETCDCTL: boolean = HAVE_ETCD && (await runs("etcdctl", ["version"]));

const enc = new TextEncoder();

/** Standard base64 of a string's UTF-8 bytes, or of bytes. */
export function b64(data: string | Uint8Array): string {
  const bytes = typeof data === "string" ? enc.encode(data) : data;
  let s = "";
  for (let i = 0; i < bytes.length; i += 4096) {
    s += String.fromCharCode(...bytes.subarray(i, i + 4096));
  }
  return btoa(s);
}

/** POST `body` as JSON to `path` of a JSON gateway; the status and the parsed answer. */
export async function post(
  url: string,
  path: string,
  body: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url + path, { method: "POST", body: JSON.stringify(body) });
  return { status: res.status, json: JSON.parse(await res.text()) };
}

/** POST to etcd and fail unless it answers 200. */
export async function must(
  etcd: ServerProcess,
  path: string,
  body: unknown,
): Promise<Record<string, unknown>> {
  const { status, json } = await post(etcd.url, path, body);
  if (status !== 200) throw new Error(`${path}: ${status} ${JSON.stringify(json)}`);
  return json;
}

/**
 * Run etcdctl with `args` (ETCDCTL_API=3); its stdout.
 *
 * @throws {Error} with its stderr when it exits non-zero.
 */
export async function etcdctl(args: string[]): Promise<string> {
  const out = await new Deno.Command("etcdctl", {
    args,
    env: { ETCDCTL_API: "3" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`etcdctl ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

/**
 * Start etcd 3.4 on a fresh data dir under `dir`, let `write` build a
 * history through it, save a snapshot to `<dir>/etcd.snapshot` with
 * etcdctl, let `observe` read etcd's answers, and stop etcd. Returns the
 * snapshot's path and what `observe` returned.
 */
export async function etcdSnapshot<T>(
  dir: string,
  write: (etcd: ServerProcess) => Promise<void>,
  observe: (etcd: ServerProcess) => Promise<T>,
): Promise<{ file: string; observed: T }> {
  const etcd = await startEtcd(`${dir}/etcd-data`);
  try {
    await write(etcd);
    const file = `${dir}/etcd.snapshot`;
    await etcdctl(["--endpoints", etcd.endpoint, "snapshot", "save", file]);
    const observed = await observe(etcd);
    return { file, observed };
  } finally {
    await etcd.terminate();
  }
}

/** Deterministic bytes (a linear congruential sequence from `seed`). */
export function bytesOf(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}
