/**
 * Migration from etcd, differential: the real etcd 3.4 builds a history
 * (puts, overwrites, deletes, a key deleted and created again, txns taking
 * either branch, a delete range, leases with keys attached, a revoked lease,
 * values over a page long, a compaction), `etcdctl snapshot save` takes it,
 * and server/snapshot/etcd_import.ts imports it into a fresh cairn member.
 * cairn's JSON gateway over that member must then answer what etcd answered
 * (header IDs and raft_term aside): ranges of the whole key space at every
 * revision from the compacted one to the current (every key's value,
 * create_revision, mod_revision, version and lease), the errors below the
 * compacted revision and past the current one, a watch from the compacted
 * revision with prev_kv, and the leases with their keys and granted TTLs.
 *
 * Also: a snapshot whose last changes were compacted away keeps etcd's
 * revision, and a damaged, truncated or hashless file is refused with the
 * reason.
 *
 * Skipped when etcd or etcdctl is absent.
 */
import assert from "node:assert/strict";
import { openBackend } from "../../native/lmdb.ts";
import { createGateway } from "../../server/gateway/mod.ts";
import { memberId } from "../../server/ids.ts";
import { type Member, memberDir, openMember } from "../../server/member.ts";
import { BboltError } from "../../server/snapshot/bbolt.ts";
import {
  EtcdImportError,
  type EtcdImportProgress,
  type EtcdImportResult,
  importEtcdSnapshot,
} from "../../server/snapshot/etcd_import.ts";
import { b64, bytesOf, etcdSnapshot, HAVE_ETCD_AND_ETCDCTL, must, post } from "../etcd_snapshot.ts";
import type { ServerProcess } from "../servers.ts";

const ALL = { key: b64("\0"), range_end: b64("\0") };
const LEASES = { l1: "1000", l2: "2000", l3: "3000", l4: "4000" };

/** The history etcd builds; returns the revision it compacted at. */
async function writeHistory(etcd: ServerProcess): Promise<number> {
  const put = (key: string | Uint8Array, value: string | Uint8Array, lease?: string) =>
    must(etcd, "/v3/kv/put", { key: b64(key), value: b64(value), ...(lease ? { lease } : {}) });
  const del = (key: string, range_end?: string) =>
    must(etcd, "/v3/kv/deleterange", {
      key: b64(key),
      ...(range_end ? { range_end: b64(range_end) } : {}),
    });
  await put("a", "1");
  await put("a", "2");
  await put("b", "x");
  await put(new Uint8Array([0, 1, 0xff]), "zero bytes in the key");
  await put("a\0b", "z");
  await del("a");
  await must(etcd, "/v3/lease/grant", { ID: LEASES.l1, TTL: "600" });
  await must(etcd, "/v3/lease/grant", { ID: LEASES.l2, TTL: "1200" });
  await must(etcd, "/v3/lease/grant", { ID: LEASES.l3, TTL: "900" });
  await must(etcd, "/v3/lease/grant", { ID: LEASES.l4, TTL: "3000" }); // never used by a key
  await put("l1", "leased", LEASES.l1);
  await put("l2a", "leased", LEASES.l2);
  await put("l2b", "leased", LEASES.l2);
  await put("l3", "leased", LEASES.l3);
  const revoke = await must(etcd, "/v3/lease/revoke", { ID: LEASES.l3 });
  const revoked = Number((revoke.header as { revision: string }).revision);
  for (let t = 0; t < 4; t++) {
    const success = [];
    for (let i = t * 100; i < (t + 1) * 100; i++) {
      const key = `k/${String(i).padStart(3, "0")}`;
      success.push({ request_put: { key: b64(key), value: b64(`v${i}`) } });
    }
    await must(etcd, "/v3/kv/txn", { success });
  }
  await put("large/0", bytesOf(20_000, 1));
  await put("large/1", bytesOf(300_000, 2));
  await put("b", "y");
  // The revoke's deletion is the compacted revision: its tombstone goes.
  await must(etcd, "/v3/kv/compaction", { revision: String(revoked), physical: true });
  await must(etcd, "/v3/kv/txn", {
    compare: [{ key: b64("b"), target: "VERSION", result: "EQUAL", version: "2" }],
    success: [
      { request_put: { key: b64("c"), value: b64("3") } },
      { request_delete_range: { key: b64("k/000") } },
      { request_put: { key: b64("a"), value: b64("again") } },
    ],
    failure: [{ request_put: { key: b64("wrong"), value: b64("branch") } }],
  });
  await put("l1", "not leased any more");
  await del("k/1", "k/2");
  await put("empty", "");
  await put("large/0", bytesOf(30_000, 3));
  await must(etcd, "/v3/kv/txn", {
    compare: [{ key: b64("a"), target: "VALUE", result: "EQUAL", value: b64("nope") }],
    success: [{ request_put: { key: b64("wrong"), value: b64("branch") } }],
    failure: [
      { request_put: { key: b64("d"), value: b64("4") } },
      { request_put: { key: b64("e"), value: b64("5"), lease: LEASES.l2 } },
    ],
  });
  await del("b");
  return revoked;
}

/**
 * A copy of the database in snapshot `file` (without its hash) whose `meta`
 * bucket says a compaction at `rev` was scheduled (bbolt has no page
 * checksums: the value is changed in place).
 */
async function scheduleCompaction(file: string, copy: string, rev: number): Promise<string> {
  const bytes = (await Deno.readFile(file)).slice(0, -32);
  const name = new TextEncoder().encode("scheduledCompactRev");
  let patched = 0;
  for (let at = 0; at + name.length + 17 <= bytes.length; at++) {
    if (!name.every((b, j) => bytes[at + j] === b)) continue;
    new DataView(bytes.buffer).setBigUint64(at + name.length, BigInt(rev));
    patched++;
  }
  assert.ok(patched > 0, "the meta bucket holds scheduledCompactRev");
  await Deno.writeFile(copy, bytes);
  return copy;
}

/** A request to compare, and how to compare its answer. */
interface Probe {
  path: string;
  body: unknown;
}

/** The probes of the whole history: ranges at every readable revision and around them, leases. */
function probes(compacted: number, current: number): Probe[] {
  const out: Probe[] = [];
  for (let rev = compacted - 1; rev <= current + 1; rev++) {
    out.push({ path: "/v3/kv/range", body: { ...ALL, revision: String(rev) } });
  }
  out.push({ path: "/v3/kv/range", body: ALL });
  out.push({ path: "/v3/kv/range", body: { ...ALL, count_only: true } });
  out.push({
    path: "/v3/kv/range",
    body: { ...ALL, keys_only: true, sort_order: "DESCEND", sort_target: "MOD", limit: "7" },
  });
  for (let rev = compacted; rev <= current; rev++) {
    out.push({ path: "/v3/kv/range", body: { key: b64("a"), revision: String(rev) } });
    out.push({ path: "/v3/kv/range", body: { key: b64("l1"), revision: String(rev) } });
  }
  for (const id of Object.values(LEASES)) {
    out.push({ path: "/v3/kv/lease/timetolive", body: { ID: id, keys: true } });
  }
  return out;
}

/** An answer with what legitimately differs between two clusters removed. */
function normalize(json: Record<string, unknown>): Record<string, unknown> {
  const out = structuredClone(json);
  const header = out.header as Record<string, unknown> | undefined;
  if (header !== undefined) {
    delete header.cluster_id;
    delete header.member_id;
    delete header.raft_term;
  }
  // Remaining TTLs run down from the grant (etcd) or from the import (cairn).
  if ("grantedTTL" in out && Number(out.TTL) > 0) {
    const [ttl, granted] = [Number(out.TTL), Number(out.grantedTTL)];
    assert.ok(ttl <= granted && ttl >= granted - 60, `TTL ${ttl} of ${granted}`);
    out.TTL = "<running>";
  }
  if (Array.isArray(out.keys)) out.keys = [...out.keys].sort();
  if (Array.isArray(out.leases)) {
    out.leases = [...out.leases].sort((x, y) => (x.ID < y.ID ? -1 : 1));
  }
  return out;
}

/** Sends a request to a JSON gateway (etcd's over HTTP, or cairn's in-process). */
type Send = (path: string, init: RequestInit) => Promise<Response>;

/**
 * The responses (`result` objects) of a watch of every key from `start`,
 * with prev_kv, read until `enough` says so.
 */
async function watchResults(
  send: Send,
  start: number,
  enough: (results: Record<string, unknown>[]) => boolean,
): Promise<Record<string, unknown>[]> {
  const abort = new AbortController();
  const res = await send("/v3/watch", {
    method: "POST",
    body: JSON.stringify({
      create_request: { ...ALL, start_revision: String(start), prev_kv: true },
    }),
    signal: abort.signal,
  });
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const results: Record<string, unknown>[] = [];
  let buffered = "";
  try {
    while (!enough(results)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`watch ended early: ${buffered}`);
      buffered += value;
      let nl;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (line !== "") results.push(JSON.parse(line).result);
      }
    }
  } finally {
    abort.abort();
    await reader.cancel().catch(() => {});
  }
  return results;
}

/** Events of a watch of every key from `start` (with prev_kv) through revision `until`. */
async function watchAll(send: Send, start: number, until: number): Promise<unknown[]> {
  type Ev = { kv: { mod_revision: string } };
  const events = (results: Record<string, unknown>[]) =>
    results.flatMap((r) => (r.events ?? []) as Ev[]);
  return events(
    await watchResults(send, start, (results) => {
      const all = events(results);
      return all.length > 0 && Number(all[all.length - 1].kv.mod_revision) >= until;
    }),
  );
}

/** etcd's answers to `probes` and its watch, taken right after the snapshot. */
async function observeEtcd(etcd: ServerProcess, compacted: number) {
  const current = Number(
    ((await must(etcd, "/v3/kv/range", { key: b64("a") })).header as { revision: string })
      .revision,
  );
  const answers = [];
  for (const p of probes(compacted, current)) answers.push(await post(etcd.url, p.path, p.body));
  answers.push(await post(etcd.url, "/v3/lease/leases", {}));
  const events = await watchAll((path, init) => fetch(etcd.url + path, init), compacted, current);
  return { current, answers, events };
}

/** Import `file` into a fresh member under `dir`; run `fn` with its gateway. */
async function withImported(
  dir: string,
  file: string,
  fn: (
    app: { fetch: (r: Request) => Response | Promise<Response> },
    result: EtcdImportResult,
    progress: EtcdImportProgress[],
    member: Member,
  ) => Promise<void>,
  options: { name?: string; skipHashCheck?: boolean } = {},
): Promise<void> {
  const dataDir = `${dir}/${options.name ?? "cairn"}`;
  const backend = openBackend(memberDir(dataDir));
  const progress: EtcdImportProgress[] = [];
  let result: EtcdImportResult;
  try {
    result = await importEtcdSnapshot(file, backend, {
      onProgress: (p) => progress.push(p),
      skipHashCheck: options.skipHashCheck,
    });
  } finally {
    await backend.close();
  }
  const id = memberId(["http://localhost:2380"], "etcd-import");
  const member = await openMember(dataDir, { memberId: id, clusterId: id }, {
    maxTxnOps: 128,
    maxRequestBytes: 1572864,
  });
  try {
    await fn(createGateway(member.service, { cairnVersion: "0" }), result, progress, member);
  } finally {
    member.service.close();
    await member.close();
  }
}

/** Requests to an in-process gateway. */
function cairnSend(app: { fetch: (r: Request) => Response | Promise<Response> }): Send {
  return async (path, init) => await app.fetch(new Request(`http://localhost${path}`, init));
}

async function cairnPost(
  app: { fetch: (r: Request) => Response | Promise<Response> },
  path: string,
  body: unknown,
) {
  const res = await app.fetch(
    new Request(`http://localhost${path}`, { method: "POST", body: JSON.stringify(body) }),
  );
  return { status: res.status, json: JSON.parse(await res.text()) };
}

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, ignore: !HAVE_ETCD_AND_ETCDCTL, fn });

test("etcd import: cairn answers what etcd 3.4 answered for every revision, watch and lease", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "cairn-etcd-import-" });
  try {
    let compacted = 0;
    const { file, observed } = await etcdSnapshot(dir, async (etcd) => {
      compacted = await writeHistory(etcd);
    }, (etcd) => observeEtcd(etcd, compacted));
    const { current, answers, events } = observed;
    await withImported(dir, file, async (app, result, progress) => {
      assert.equal(result.revision, current);
      assert.equal(result.compactRevision, compacted);
      assert.equal(result.leases, 3, "l1, l2 and l4 (l3 was revoked)");
      assert.deepEqual(result.skipped, []);
      const all = probes(compacted, current);
      all.push({ path: "/v3/lease/leases", body: {} });
      const countOnly = all.findIndex((p) => (p.body as { count_only?: boolean }).count_only);
      assert.equal(String(result.keys), answers[countOnly].json.count);
      assert.ok(progress.length >= 2 && progress[progress.length - 1].keys > 400);
      assert.equal(all.length, answers.length);
      let compared = 0;
      for (const [i, p] of all.entries()) {
        const mine = await cairnPost(app, p.path, p.body);
        const label = `${p.path} ${JSON.stringify(p.body)}`;
        assert.equal(mine.status, answers[i].status, label);
        assert.deepEqual(normalize(mine.json), normalize(answers[i].json), label);
        compared++;
      }
      // The probes saw errors, old versions and live leases, not only empties.
      assert.ok(answers.some((a) => a.status !== 200), "a compacted or future revision");
      assert.ok(answers.some((a) => JSON.stringify(a.json).includes('"lease":"2000"')));
      assert.equal(compared, all.length);

      const mine = await watchAll(cairnSend(app), compacted, current);
      assert.ok(events.length > 100, `etcd sent ${events.length} events`);
      assert.deepEqual(mine, events);
    });

    // A compaction etcd scheduled but had not finished (a snapshot taken
    // while it compacted) is finished by the import.
    const later = current - 3;
    const patched = await scheduleCompaction(file, `${dir}/scheduled.db`, later);
    const histories: number[] = [];
    await withImported(dir, file, (_app, _result, _progress, member) => {
      histories.push(member.backend.count("history", {}));
      return Promise.resolve();
    }, { name: "cairn-again" });
    await withImported(dir, patched, async (app, result, _progress, member) => {
      assert.equal(result.compactRevision, later);
      assert.equal(member.backend.getMeta("compact_done"), later);
      histories.push(member.backend.count("history", {}));
      const all = probes(compacted, current);
      let compared = 0;
      for (const [i, p] of all.entries()) {
        const rev = Number((p.body as { revision?: string }).revision ?? 0);
        if (p.path !== "/v3/kv/range" || rev < later - 1) continue;
        const mine = await cairnPost(app, p.path, p.body);
        // Below the compaction: etcd's answer below its own compaction.
        const theirs = rev === later - 1 ? answers[0] : answers[i];
        assert.equal(mine.status, theirs.status, JSON.stringify(p.body));
        assert.deepEqual(normalize(mine.json), normalize(theirs.json), JSON.stringify(p.body));
        compared++;
      }
      assert.ok(compared > 5, `${compared} ranges compared`);
    }, { name: "cairn-scheduled", skipHashCheck: true });
    assert.ok(histories[1] < histories[0], `history records: ${histories}`);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

test("etcd import: changes compacted away leave etcd's revision; a watch below it is refused", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "cairn-etcd-import-" });
  try {
    let compacted = 0;
    const { file, observed } = await etcdSnapshot(dir, async (etcd) => {
      await must(etcd, "/v3/kv/put", { key: b64("x"), value: b64("1") });
      await must(etcd, "/v3/kv/put", { key: b64("y"), value: b64("1") });
      const res = await must(etcd, "/v3/kv/deleterange", { key: b64("x"), range_end: b64("z") });
      compacted = Number((res.header as { revision: string }).revision);
      await must(etcd, "/v3/kv/compaction", { revision: String(compacted), physical: true });
    }, async (etcd) => [
      await post(etcd.url, "/v3/kv/range", ALL),
      await post(etcd.url, "/v3/kv/range", { ...ALL, revision: String(compacted - 1) }),
      await post(etcd.url, "/v3/kv/compaction", { revision: String(compacted) }),
      await watchResults(
        (path, init) => fetch(etcd.url + path, init),
        compacted - 1,
        (r) => r.length >= 2,
      ),
    ]);
    await withImported(dir, file, async (app, result) => {
      assert.deepEqual(
        { revision: result.revision, compactRevision: result.compactRevision, keys: result.keys },
        { revision: compacted, compactRevision: compacted, keys: 0 },
      );
      const mine = [
        await cairnPost(app, "/v3/kv/range", ALL),
        await cairnPost(app, "/v3/kv/range", { ...ALL, revision: String(compacted - 1) }),
        await cairnPost(app, "/v3/kv/compaction", { revision: String(compacted) }),
      ];
      for (const [i, a] of observed.slice(0, 3).entries()) {
        const theirs = a as { status: number; json: Record<string, unknown> };
        assert.equal(mine[i].status, theirs.status);
        assert.deepEqual(normalize(mine[i].json), normalize(theirs.json));
      }
      // A watch from below the compacted revision is created, then canceled with it.
      const theirs = observed[observed.length - 1] as unknown as Record<string, unknown>[];
      const watch = await watchResults(cairnSend(app), compacted - 1, (r) => r.length >= 2);
      assert.deepEqual(watch.map(normalize), theirs.map(normalize));
      assert.equal(watch[1].compact_revision, String(compacted));
      // A new write continues from etcd's revision.
      const put = await cairnPost(app, "/v3/kv/put", { key: b64("x"), value: b64("2") });
      assert.equal(put.json.header.revision, String(compacted + 1));
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

test("etcd import: damaged, truncated and hashless snapshots are refused with the reason", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "cairn-etcd-import-" });
  try {
    const { file } = await etcdSnapshot(dir, async (etcd) => {
      await must(etcd, "/v3/kv/put", { key: b64("x"), value: b64("1") });
    }, async () => {});
    const bytes = await Deno.readFile(file);
    const attempt = async (name: string, data: Uint8Array, skipHashCheck = false) => {
      const path = `${dir}/${name}`;
      await Deno.writeFile(path, data);
      const backend = openBackend(`${dir}/store-${name}`);
      try {
        await importEtcdSnapshot(path, backend, { skipHashCheck });
        return undefined;
      } catch (err) {
        return err as Error;
      } finally {
        await backend.close();
      }
    };
    const flipped = bytes.slice();
    flipped[Math.floor(bytes.length / 2)] ^= 0x55;
    let err = await attempt("flipped", flipped);
    assert.ok(
      err instanceof EtcdImportError &&
        /hash mismatch: expected sha256 [0-9a-f]{64}, got/.test(err.message),
      String(err),
    );

    // A page short: the size still looks like database + hash, which does not match.
    err = await attempt("short", bytes.subarray(0, bytes.length - 4096));
    assert.ok(err instanceof EtcdImportError && err.message.includes("hash mismatch"), String(err));
    const truncated = bytes.subarray(0, bytes.length - 100);
    err = await attempt("truncated", truncated);
    assert.ok(
      err instanceof EtcdImportError && err.message.includes("snapshot missing hash"),
      String(err),
    );
    err = await attempt("truncated-skip", bytes.subarray(0, bytes.length - 4096 - 32), true);
    assert.ok(err instanceof BboltError && err.message.includes("truncated"), String(err));

    err = await attempt("text", new TextEncoder().encode("not a snapshot\n".repeat(100)), true);
    assert.ok(
      err instanceof BboltError && err.message.includes("not a bbolt database"),
      String(err),
    );

    // The database alone (as in an etcd data dir) imports with skipHashCheck.
    const db = bytes.subarray(0, bytes.length - 32);
    err = await attempt("db", db);
    assert.ok(err instanceof EtcdImportError && err.message.includes("missing hash"), String(err));
    assert.equal(await attempt("db-skip", db, true), undefined);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
