/**
 * Differential test of ctl's maintenance commands (`alarm list|disarm`,
 * `defrag`, `endpoint hashkv`) with the etcdctl differential harness
 * (etcdctl_diff.ts):
 * - `ctl` against cairn must print what etcdctl 3.4 prints against etcd 3.4
 *   (exit code, stdout, stderr; masked as the harness masks etcdctl's
 *   outputs: hashes, sizes and raft indexes; member and cluster IDs are
 *   equal on both sides) for: no alarm, NOSPACE raised by a small
 *   --quota-backend-bytes on both servers, CORRUPT raised through the
 *   gateway, disarm, the recovery (compact, defrag, disarm), hashkv in
 *   every -w format and with --rev, and the errors (bad --rev, a future or
 *   compacted revision, an unreachable endpoint, arguments);
 * - `ctl` and etcdctl against the same cairn member must print the same
 *   bytes, hashes and IDs included (etcdctl over gRPC, ctl over the JSON
 *   gateway);
 * - `alarm list -w fields`, where etcdctl 3.4 panics: ctl prints the alarms
 *   etcdctl's `-w json` lists;
 * - `endpoint hashkv --cluster` and `defrag --cluster` over a three-member
 *   cairn cluster print what etcdctl prints there, and every member gives
 *   the same hash.
 *
 * Skipped when the etcd or etcdctl binary is absent.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { Client, EtcdError } from "../../client/mod.ts";
import { HAVE_ETCD, runs } from "../servers.ts";
import { allocatePorts, postJson, startCluster } from "./cluster_harness.ts";
import {
  CTL_COMMAND,
  Diff,
  etcdctl,
  newMasks,
  runCli,
  type Server,
  type Side,
  startServer,
  TooManyDifferences,
} from "./etcdctl_diff.ts";

const HAVE_ETCDCTL = HAVE_ETCD && (await runs("etcdctl", ["version"]));

/** A quota (bytes) that three 100 kB values exceed on etcd 3.4 and on cairn. */
const QUOTA_FLAGS = ["--quota-backend-bytes", "300000"];
/** The value size the quota is filled with, in bytes. */
const FILL_VALUE_BYTES = 100_000;
/** Puts tried before giving up on raising NOSPACE. */
const MAX_FILL_PUTS = 50;

const dec = new TextDecoder();

/** The side of a single member: its endpoint and dir masked; `{ep}` is its endpoint. */
function side(server: Server, label: string, cli?: readonly string[]): Side {
  return {
    label,
    endpoints: server.endpoint,
    dir: server.dir,
    masks: {
      ...newMasks([[server.endpoint, "<client>"], [server.dir, "<dir>"]]),
      dropClientWarnings: true,
    },
    vars: new Map([["ep", server.endpoint]]),
    cli,
  };
}

/** Two servers started with `flags`, closed after `fn`. */
async function withServers(
  kinds: ("etcd" | "cairn")[],
  flags: string[],
  fn: (servers: Server[]) => Promise<void>,
): Promise<void> {
  const started = await Promise.allSettled(kinds.map((k) => startServer(k, flags)));
  try {
    const servers = started.map((s) => {
      if (s.status === "rejected") throw s.reason;
      return s.value;
    });
    await fn(servers);
  } finally {
    await Promise.all(started.map((s) => s.status === "fulfilled" && s.value.close()));
  }
}

/** Puts 100 kB values until the server answers NOSPACE's error; the keys are `big/N`. */
async function fillQuota(endpoint: string): Promise<void> {
  const client = new Client({ endpoints: [endpoint] });
  const value = new Uint8Array(FILL_VALUE_BYTES).fill(0x78);
  for (let i = 0; i < MAX_FILL_PUTS; i++) {
    try {
      await client.put(`big/${i}`, value);
    } catch (e) {
      if (e instanceof EtcdError && e.message === "etcdserver: mvcc: database space exceeded") {
        return;
      }
      throw e;
    }
  }
  throw new Error(`${endpoint}: no NOSPACE after ${MAX_FILL_PUTS} puts`);
}

/** Raises `alarm` for the member itself through the gateway's Maintenance.Alarm. */
async function activate(endpoint: string, alarm: "NOSPACE" | "CORRUPT"): Promise<void> {
  const { header } = await new Client({ endpoints: [endpoint] }).status();
  await postJson(`http://${endpoint}`, "/v3/maintenance/alarm", {
    action: "ACTIVATE",
    memberID: header.member_id.toString(),
    alarm,
  });
}

/** A free loopback endpoint nothing listens on. */
function deadEndpoint(): string {
  return `127.0.0.1:${allocatePorts(1)[0]}`;
}

/** Runs `fn` on both sides' servers (setup, not compared). */
function onBoth(d: Diff, fn: (endpoint: string) => Promise<unknown>): Promise<unknown> {
  return Promise.all([d.ref.endpoints, d.sub.endpoints].map(fn));
}

Deno.test({
  name: "ctl alarm, defrag, endpoint hashkv on cairn print what etcdctl prints on etcd",
  ignore: !HAVE_ETCDCTL,
  async fn() {
    await withServers(["etcd", "cairn"], QUOTA_FLAGS, async ([etcd, cairn]) => {
      const d = new Diff(side(etcd, "etcd"), side(cairn, "cairn ctl", CTL_COMMAND));
      try {
        // No alarm raised; arguments and help.
        for (const w of ["simple", "json", "table", "protobuf"]) await d.ctl(`alarm list -w ${w}`);
        await d.ctl("alarm disarm");
        await d.ctl("alarm disarm -w json");
        await d.ctl("alarm list extra");
        await d.ctl("alarm disarm extra");
        await d.ctl("alarm");
        await d.ctl("alarm bogus");
        await d.ctl("alarm list -h");
        await d.ctl("alarm disarm --help");
        await d.ctl("defrag -h");
        await d.ctl("endpoint hashkv -h");

        // endpoint hashkv over the same history (revisions 2 to 4).
        await onBoth(d, async (ep) => {
          const client = new Client({ endpoints: [ep] });
          await client.put("a", "1");
          await client.put("a", "2");
          await client.put("b", "3");
        });
        for (const w of ["simple", "json", "table", "fields", "protobuf"]) {
          await d.ctl(`endpoint hashkv -w ${w}`);
        }
        await d.ctl("endpoint hashkv --rev 2 -w json");
        await d.ctl("endpoint hashkv --rev 1000");
        await d.ctl("endpoint hashkv --rev abc");
        await d.ctl("endpoint hashkv --rev");
        await d.ctl("endpoint hashkv --cluster -w json");
        await d.ctl("endpoint hashkv --cluster -w table");
        await onBoth(d, (ep) => new Client({ endpoints: [ep] }).compact(3));
        await d.ctl("endpoint hashkv --rev 2");
        await d.ctl("endpoint hashkv --rev 3 -w json");
        await d.ctl("endpoint hashkv --rev 4 -w json");
        await d.ctl("endpoint hashkv -w fields");

        // defrag.
        await d.ctl("defrag");
        await d.ctl("defrag -w json");
        await d.ctl("defrag extra");
        await d.ctl("defrag --cluster");
        await d.ctl("defrag --cluster -w table");

        // NOSPACE from the quota, then CORRUPT through the gateway.
        await onBoth(d, fillQuota);
        for (const w of ["simple", "json", "table", "protobuf"]) await d.ctl(`alarm list -w ${w}`);
        await d.ctl("endpoint status");
        await d.ctl(["put", "k", "v"]);
        await onBoth(d, (ep) => activate(ep, "CORRUPT"));
        // etcd 3.4 lists alarms of different kinds in Go's map order: compared sorted.
        for (const w of ["simple", "json", "protobuf"]) {
          await d.ctl(`alarm list -w ${w}`, { sorted: true });
        }
        await d.ctl("alarm disarm -w json", { sorted: true });
        await d.ctl("alarm list");

        // NOSPACE again, then the recovery: delete, compact, defrag, disarm.
        // (Puts are compared only while the alarm is raised, or once the
        // store is defragmented: cairn's quota counts the size in use, etcd's
        // its file, so they differ in between, as README.md says.)
        await onBoth(d, fillQuota);
        await d.ctl(["put", "k", "v"]);
        await d.ctl("alarm list -w json");
        await onBoth(d, async (ep) => {
          const client = new Client({ endpoints: [ep] });
          const { header } = await client.delete("big/", { prefix: true });
          await client.compact(header.revision);
        });
        await d.ctl(["put", "k", "v"]);
        await d.ctl("defrag");
        await d.ctl("alarm disarm");
        await d.ctl(["put", "k", "v"]);
        await d.ctl("alarm list -w json");
        await d.ctl("alarm disarm -w table");

        // Unreachable endpoints: every one (the deadline), and one of two.
        const dead = deadEndpoint();
        const quick = "--command-timeout 1s";
        await d.ctl(`defrag ${quick}`, { endpoints: dead });
        await d.ctl(`endpoint hashkv ${quick}`, { endpoints: dead });
        await d.ctl(`alarm list ${quick}`, { endpoints: dead });
        await d.ctl(`alarm disarm ${quick}`, { endpoints: dead });
        // (Time enough for the live member's answer on a loaded machine.)
        const patient = "--command-timeout 3s";
        await d.ctl(`defrag ${patient}`, { endpoints: `${dead},{ep}` });
        await d.ctl(`endpoint hashkv ${patient}`, { endpoints: `${dead},{ep}` });
      } catch (err) {
        if (!(err instanceof TooManyDifferences)) throw err;
      }
      d.finish();
    });
  },
});

/** One command's result as compared byte for byte (clientv3's log lines left out). */
async function exact(cli: readonly string[] | undefined, endpoint: string, args: string[]) {
  const r = await runCli(cli, ["--endpoints", endpoint, ...args]);
  return {
    code: r.code,
    stdout: [...r.stdout].map((b) => b.toString(16).padStart(2, "0")).join(""),
    text: dec.decode(r.stdout),
    stderr: r.stderr.replace(/^\{"level":"warn".*\n/gm, ""),
  };
}

Deno.test({
  name: "ctl and etcdctl against one cairn member print the same bytes (hashes, IDs included)",
  ignore: !HAVE_ETCDCTL,
  async fn() {
    await withServers(["cairn"], [], async ([cairn]) => {
      const ep = cairn.endpoint;
      const client = new Client({ endpoints: [ep] });
      await client.put("a", "1");
      await client.put("b", "2");
      await client.put("a", "3");
      await client.compact(2);
      await activate(ep, "NOSPACE");
      await activate(ep, "CORRUPT");
      const same = async (args: string[]) => {
        const want = await exact(undefined, ep, args);
        const got = await exact(CTL_COMMAND, ep, args);
        assertEquals(got, want, `ctl ${args.join(" ")}`);
        return want;
      };
      for (const w of ["simple", "json", "protobuf", "table"]) {
        const r = await same(["alarm", "list", "-w", w]);
        if (w === "simple") assert(r.text.includes("alarm:CORRUPT"), r.text);
      }
      for (const w of ["simple", "json", "table", "fields", "protobuf"]) {
        const r = await same(["endpoint", "hashkv", "-w", w]);
        if (w === "json") assert(r.text.includes('"hash":'), r.text);
      }
      await same(["endpoint", "hashkv", "--rev", "3", "-w", "json"]);
      await same(["endpoint", "hashkv", "--rev", "1", "-w", "json"]);
      await same(["endpoint", "hashkv", "--cluster"]);
      await same(["defrag"]);
      // Each disarms what the other raised again.
      for (const w of ["protobuf", "json", "simple"]) {
        const want = await exact(undefined, ep, ["alarm", "disarm", "-w", w]);
        await activate(ep, "NOSPACE");
        await activate(ep, "CORRUPT");
        const got = await exact(CTL_COMMAND, ep, ["alarm", "disarm", "-w", w]);
        assertEquals(got, want, `ctl alarm disarm -w ${w}`);
        assert(want.stdout.length > 0, `alarm disarm -w ${w} printed nothing`);
        await activate(ep, "NOSPACE");
        await activate(ep, "CORRUPT");
      }
    });
  },
});

Deno.test({
  name: "ctl alarm list -w fields prints the alarms etcdctl lists (etcdctl 3.4 panics there)",
  ignore: !HAVE_ETCDCTL,
  async fn() {
    await withServers(["etcd", "cairn"], QUOTA_FLAGS, async ([etcd, cairn]) => {
      await Promise.all([etcd, cairn].map((s) => fillQuota(s.endpoint)));
      await Promise.all([etcd, cairn].map((s) => activate(s.endpoint, "CORRUPT")));
      const panic = await etcdctl(["--endpoints", etcd.endpoint, "alarm", "list", "-w", "fields"]);
      assertEquals(panic.code, 2);
      assert(
        panic.stderr.startsWith(
          "panic: runtime error: invalid memory address or nil pointer dereference\n",
        ),
        panic.stderr,
      );
      // What etcdctl lists, as the fields printer words it (kinds by their rpc.proto number).
      const listed = await etcdctl(["--endpoints", etcd.endpoint, "alarm", "list", "-w", "json"]);
      const kinds = ["NONE", "NOSPACE", "CORRUPT"];
      const alarms = [...dec.decode(listed.stdout).matchAll(/"memberID":(\d+),"alarm":(\d+)/g)];
      assertEquals(alarms.length, 2);
      // One block per alarm; etcd lists kinds in Go's map order, so blocks are compared sorted.
      const want = alarms.map(([, id, kind]) =>
        `"MemberID" : ${id}\n"AlarmType" : ${kinds[Number(kind)]}\n\n`
      ).sort();
      const got = await runCli(CTL_COMMAND, [
        ...["--endpoints", cairn.endpoint, "alarm", "list", "-w", "fields"],
      ]);
      const text = dec.decode(got.stdout);
      assert(text.endsWith("\n\n"), text);
      const blocks = text.slice(0, -2).split("\n\n").map((b) => `${b}\n\n`).sort();
      assertEquals({ code: got.code, blocks, stderr: got.stderr }, {
        code: 0,
        blocks: want,
        stderr: "",
      });
    });
  },
});

Deno.test({
  name: "ctl endpoint hashkv and defrag --cluster on three cairn members: as etcdctl, hashes equal",
  ignore: !HAVE_ETCDCTL,
  async fn() {
    const cluster = await startCluster({ kind: "cairn", size: 3 });
    try {
      const endpoints = cluster.members.map((m) => m.clientUrl.replace("http://", ""));
      const client = new Client({ endpoints });
      for (let i = 0; i < 20; i++) await client.put(`k${i % 5}`, `v${i}`);
      const { header } = await client.put("k0", "last");
      // Every member has applied the last write before the hashes are taken.
      for (const ep of endpoints) {
        for (let i = 0; i < 100; i++) {
          const r = await client.get("k0", { serializable: true, endpoint: ep });
          if (r.header.revision >= header.revision) break;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      const all = endpoints.join(",");
      const rev = String(header.revision);
      for (
        const args of [
          ["endpoint", "hashkv", "--cluster"],
          ["endpoint", "hashkv", "--cluster", "--rev", rev, "-w", "table"],
          ["endpoint", "hashkv", "-w", "fields"],
          ["defrag", "--cluster"],
        ]
      ) {
        const want = await exact(undefined, all, args);
        const got = await exact(CTL_COMMAND, all, args);
        assertEquals(got, want, `ctl ${args.join(" ")}`);
      }
      const json = await exact(CTL_COMMAND, all, [
        ...["endpoint", "hashkv", "--cluster", "--rev", rev, "-w", "json"],
      ]);
      const hashes = [...json.text.matchAll(/"hash":(\d+)/g)].map((m) => m[1]);
      assertEquals(hashes.length, 3, json.text);
      assertEquals(new Set(hashes).size, 1, `members' hashes differ: ${json.text}`);
    } finally {
      await cluster.close();
    }
  },
});
