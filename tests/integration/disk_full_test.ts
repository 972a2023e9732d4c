import assert from "node:assert/strict";
import { runs, startCairn } from "../servers.ts";
import { openMember } from "../../server/member.ts";
import { EtcdError } from "../../core/errors.ts";

const enc = new TextEncoder();

const b64 = (s: string) => btoa(s);

async function post(url: string, path: string, body: unknown): Promise<Response> {
  return await fetch(`${url}${path}`, { method: "POST", body: JSON.stringify(body) });
}

/** A small tmpfs to fill up: only as root, where `mount` works. */
async function smallDisk(megabytes: number): Promise<string | undefined> {
  if (Deno.uid() !== 0) return undefined;
  const dir = Deno.makeTempDirSync({ prefix: "cairn-full-" });
  if (await runs("mount", ["-t", "tmpfs", "-o", `size=${megabytes}m`, "tmpfs", dir])) return dir;
  Deno.removeSync(dir);
  return undefined;
}

/** Write zeros into `path` until the disk is full; returns how many bytes fitted. */
function fill(path: string): number {
  const file = Deno.openSync(path, { create: true, write: true });
  const chunk = new Uint8Array(256 * 1024);
  let written = 0;
  try {
    for (;;) written += file.writeSync(chunk);
  } catch {
    return written;
  } finally {
    file.close();
  }
}

const disk = await smallDisk(64);

Deno.test({
  name: "disk full: the member stays up, refuses writes with etcd's error, loses nothing, recovers",
  ignore: disk === undefined,
  fn: async () => {
    const dataDir = `${disk}/data`;
    let server = await startCairn(dataDir, ["--http-workers", "0"]);
    try {
      const acked = new Map<string, string>();
      const value = "v".repeat(32 * 1024);
      for (let i = 0; i < 20; i++) {
        const res = await post(server.url, "/v3/kv/put", { key: b64(`k${i}`), value: b64(value) });
        assert.equal(res.status, 200, await res.text());
        acked.set(`k${i}`, value);
      }
      const filler = `${disk}/filler`;
      fill(filler);
      // Write until the disk refuses: every put is acknowledged or refused
      // with etcd's out-of-space error, and the process stays up.
      let refused: { status: number; body: { message?: string; code?: number } } | undefined;
      for (let i = 20; i < 2000 && refused === undefined; i++) {
        const res = await post(server.url, "/v3/kv/put", { key: b64(`k${i}`), value: b64(value) });
        const body = await res.json();
        if (res.status === 200) acked.set(`k${i}`, value);
        else refused = { status: res.status, body };
      }
      assert.ok(refused !== undefined, "a full disk refuses writes");
      assert.equal(refused.body.message, "etcdserver: mvcc: database space exceeded");
      assert.equal(refused.body.code, 8);
      // Still serving: another write is refused the same way, not dropped,
      // and reads see every acknowledged write.
      const again = await post(server.url, "/v3/kv/put", { key: b64("x"), value: b64("y") });
      assert.equal((await again.json()).code, 8);
      const during = await post(server.url, "/v3/kv/range", {
        key: b64("k"),
        range_end: b64("l"),
        count_only: true,
      });
      assert.equal(during.status, 200);
      assert.equal(Number((await during.json()).count), acked.size);

      // Space comes back: the member takes writes again without a restart.
      Deno.removeSync(filler);
      let recovered = false;
      for (let i = 0; i < 100 && !recovered; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const res = await post(server.url, "/v3/kv/put", { key: b64("after"), value: b64("1") });
        recovered = res.status === 200;
        await res.body?.cancel();
      }
      assert.ok(recovered, "writes are taken again once space is back");

      // Nothing acknowledged is lost, now or after kill -9 and a restart.
      for (let round = 0; round < 2; round++) {
        const res = await post(server.url, "/v3/kv/range", {
          key: b64("k"),
          range_end: b64("l"),
          keys_only: true,
        });
        const body = await res.json();
        const keys = new Set((body.kvs ?? []).map((kv: { key: string }) => atob(kv.key)));
        for (const key of acked.keys()) assert.ok(keys.has(key), `acknowledged ${key} is there`);
        if (round === 0) {
          await server.kill();
          server = await startCairn(dataDir, ["--http-workers", "0"]);
        }
      }
    } finally {
      await server.kill();
      await runs("umount", [disk!]);
      Deno.removeSync(disk!, { recursive: true });
    }
  },
});

const disk2 = await smallDisk(8);

Deno.test({
  name: "disk full (embedded): writes get etcd's error, reads go on, a restart loses nothing",
  ignore: disk2 === undefined,
  fn: async () => {
    const dataDir = `${disk2}/data`;
    const ids = { memberId: 1n, clusterId: 1n };
    const limits = { maxTxnOps: 128, maxRequestBytes: 1572864 };
    // Small WAL segments, so the full disk is met when the WAL cuts a new one.
    const raft = { walSegmentBytes: 256 * 1024, reserveBytes: 1024 * 1024 };
    let m = await openMember(dataDir, ids, limits, raft);
    const value = new Uint8Array(16 * 1024).fill(120);
    const acked: string[] = [];
    try {
      fill(`${disk2}/filler`);
      let refused: unknown;
      for (let i = 0; i < 400 && refused === undefined; i++) {
        try {
          await m.service.put({ key: enc.encode(`k${i}`), value });
          acked.push(`k${i}`);
        } catch (err) {
          refused = err;
        }
      }
      assert.ok(refused instanceof EtcdError, `a full disk refuses writes (${refused})`);
      // A put whose WAL write met the full disk has an unknown outcome
      // (server/README.md, Failures); the writes after it are refused.
      let unknown = 0;
      if (refused.message === "etcdserver: request timed out") {
        unknown = 1;
        refused = await m.service.put({ key: enc.encode("next"), value }).catch((err) => err);
        assert.ok(refused instanceof EtcdError, `a full disk refuses writes (${refused})`);
      }
      assert.equal(refused.message, "etcdserver: mvcc: database space exceeded");
      // Reads go on, and see every acknowledged write.
      const r = await m.service.range({ key: enc.encode("k"), range_end: enc.encode("l") });
      assert.ok(r.count >= acked.length && r.count <= acked.length + unknown, `${r.count} keys`);
      await m.close();
      Deno.removeSync(`${disk2}/filler`);
      m = await openMember(dataDir, ids, limits, raft);
      const again = await m.service.range({ key: enc.encode("k"), range_end: enc.encode("l") });
      assert.ok(
        again.count >= acked.length && again.count <= acked.length + unknown,
        `${again.count} keys after the restart, ${acked.length} acknowledged`,
      );
      await m.service.put({ key: enc.encode("after"), value: enc.encode("1") });
    } finally {
      await m.close();
      await runs("umount", [disk2!]);
      Deno.removeSync(disk2!, { recursive: true });
    }
  },
});
