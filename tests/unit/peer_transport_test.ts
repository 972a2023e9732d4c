import assert from "node:assert/strict";
import type { Message, MessageType } from "../../core/raft/types.ts";
import {
  MAX_PEER_INFLIGHT_REQUESTS,
  MAX_PEER_QUEUE_BYTES,
  MAX_PEER_QUEUE_MESSAGES,
  MAX_PEER_STREAM_BUFFER_BYTES,
} from "../../core/limits.ts";
import { AddressInUseError } from "../../server/listen.ts";
import {
  decodeMessage,
  decodeMessages,
  encodeMessages,
  encodeSnapshotHead,
  PeerCodecError,
} from "../../server/peer/codec.ts";
import { PeerTransport, type PeerTransportOptions } from "../../server/peer/transport.ts";

const CLUSTER = 0xdeadbeefcafef00dn;
const LOCAL = new URL("http://127.0.0.1:0");

function msg(
  type: MessageType,
  from: number,
  to: number,
  index: number,
  data?: Uint8Array,
): Message {
  return {
    type,
    from,
    to,
    term: 3,
    logTerm: 2,
    index,
    entries: data ? [{ term: 3, index: index + 1, type: "normal", data }] : [],
    commit: index,
    reject: false,
    rejectHint: 0,
  };
}

/** Bytes that tell messages apart: index i, length i % 300. */
function payload(i: number): Uint8Array {
  return Uint8Array.from({ length: i % 300 }, (_, k) => (i * 31 + k) & 0xff);
}

/** A transport with its callbacks recorded, and waits on them (guarded, so a bug fails instead of hanging). */
class Member {
  t!: PeerTransport;
  received: Message[] = [];
  batches = 0;
  unreachable: number[] = [];
  snapshotReports: [number, boolean][] = [];
  snapshots: [Message, string][] = [];
  #waits: { pred: () => boolean; resolve: () => void }[] = [];
  readonly dir = Deno.makeTempDirSync({ prefix: "cairn-peer-" });

  static async start(
    id: number,
    extra: Partial<PeerTransportOptions> = {},
  ): Promise<Member> {
    const m = new Member();
    m.t = await PeerTransport.listen([LOCAL], {
      id,
      clusterId: CLUSTER,
      snapDir: `${m.dir}/snap`,
      deliver: (ms) => {
        m.batches++;
        m.received.push(...ms);
        m.#check();
      },
      deliverSnapshot: (msg, file) => {
        m.snapshots.push([msg, file]);
        m.#check();
      },
      openSnapshot: () => Promise.reject(new Error("no snapshot here")),
      reportUnreachable: (peer) => {
        m.unreachable.push(peer);
        m.#check();
      },
      reportSnapshot: (peer, failed) => {
        m.snapshotReports.push([peer, failed]);
        m.#check();
      },
      ...extra,
    });
    return m;
  }

  #check(): void {
    for (const w of [...this.#waits]) {
      if (w.pred()) {
        this.#waits.splice(this.#waits.indexOf(w), 1);
        w.resolve();
      }
    }
  }

  until(pred: () => boolean, what: string): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const guard = setTimeout(() => reject(new Error(`never happened: ${what}`)), 30_000);
      this.#waits.push({
        pred,
        resolve: () => {
          clearTimeout(guard);
          resolve();
        },
      });
    });
  }

  async close(): Promise<void> {
    await this.t.close();
    Deno.removeSync(this.dir, { recursive: true });
  }
}

function connect(members: Member[], ids: number[]): void {
  members.forEach((a, i) => {
    members.forEach((b, j) => {
      if (i !== j) a.t.setPeer(ids[j], b.t.urls);
    });
  });
}

const yieldTask = () => new Promise((r) => setTimeout(r, 0));

/** A port nothing listens on. */
function deadUrl(): string {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return `http://127.0.0.1:${port}`;
}

Deno.test("peer codec: every field round-trips; garbage and local types are refused", () => {
  const m: Message = {
    ...msg("MsgApp", 1, 2, 7, new Uint8Array([0, 255, 1])),
    context: new Uint8Array([9, 8]),
    transfer: true,
    reject: true,
    rejectHint: 5,
    term: 2 ** 40,
  };
  m.entries.push({ term: 4, index: 9, type: "confChange", data: new Uint8Array(0) });
  const [back] = decodeMessages(encodeMessages([m]));
  assert.deepEqual(back, m);
  assert.equal(Object.getPrototypeOf(back.entries[0].data), Uint8Array.prototype);
  const snap: Message = {
    ...msg("MsgSnap", 1, 2, 0),
    snapshot: {
      metadata: { index: 100, term: 3, confState: { voters: [1, 2], learners: [3] } },
      data: new Uint8Array(0),
    },
  };
  const head = encodeSnapshotHead(snap);
  assert.equal(new DataView(head.buffer).getUint32(0), head.byteLength - 4);
  assert.deepEqual(decodeMessage(head.subarray(4)), snap);
  assert.throws(() => decodeMessages(new Uint8Array([0xc1])), PeerCodecError);
  assert.throws(() => decodeMessages(encodeMessages([msg("MsgHup", 1, 2, 0)])), PeerCodecError);
  const bad = encodeMessages([m]);
  assert.throws(() => decodeMessages(bad.subarray(0, bad.byteLength - 1)), PeerCodecError);
});

Deno.test("peer transport: messages cross intact, in order per peer, many per request", async () => {
  const [a, b, c] = await Promise.all([1, 2, 3].map((id) => Member.start(id)));
  try {
    connect([a, b, c], [1, 2, 3]);
    const N = 3000;
    for (let i = 0; i < N; i++) {
      a.t.send([msg("MsgApp", 1, 2, i, payload(i))]);
      c.t.send([{ ...msg("MsgHeartbeat", 3, 2, i), context: payload(i + 1) }]);
      if (i < 500) b.t.send([msg("MsgAppResp", 2, 1, i)]);
      assert.ok(a.t.inflight(2) <= MAX_PEER_INFLIGHT_REQUESTS);
      if (i % 97 === 0) await yieldTask();
    }
    await b.until(() => b.received.length === 2 * N, "b received every message");
    await a.until(() => a.received.length === 500, "a received every message");
    const fromA = b.received.filter((m) => m.from === 1);
    const fromC = b.received.filter((m) => m.from === 3);
    assert.deepEqual(fromA.map((m) => m.index), [...Array(N).keys()]);
    assert.deepEqual(fromC.map((m) => m.index), [...Array(N).keys()]);
    for (const m of fromA) {
      assert.equal(m.type, "MsgApp");
      assert.equal(m.to, 2);
      assert.deepEqual(m.entries, [{
        term: 3,
        index: m.index + 1,
        type: "normal",
        data: payload(m.index),
      }]);
    }
    for (const m of fromC) assert.deepEqual(m.context, payload(m.index + 1));
    assert.deepEqual(a.received.map((m) => m.index), [...Array(500).keys()]);
    assert.ok(b.batches < N / 10, `${2 * N} messages came in ${b.batches} requests`);
    assert.equal(a.unreachable.length + b.unreachable.length + c.unreachable.length, 0);
  } finally {
    await Promise.all([a.close(), b.close(), c.close()]);
  }
});

Deno.test("peer transport: batches are delivered in request order, skipping given-up ones", async () => {
  const b = await Member.start(2);
  try {
    const post = (seq: number, floor: number, index: number) =>
      fetch(`${b.t.urls[0]}/raft/messages`, {
        method: "POST",
        body: encodeMessages([msg("MsgApp", 1, 2, index)]),
        headers: {
          "x-etcd-cluster-id": CLUSTER.toString(16),
          "x-server-from": "1",
          "x-raft-to": "2",
          "x-cairn-stream": "s1",
          "x-cairn-seq": String(seq),
          "x-cairn-floor": String(floor),
        },
      }).then(async (r) => {
        await r.body?.cancel();
        return r.status;
      });
    const indexes = () => b.received.map((m) => m.index);
    assert.equal(await post(2, 1, 20), 204);
    assert.deepEqual(indexes(), [], "request 2 waits for request 1");
    assert.equal(await post(1, 1, 10), 204);
    assert.deepEqual(indexes(), [10, 20]);
    assert.equal(await post(4, 3, 40), 204);
    assert.deepEqual(indexes(), [10, 20], "request 4 waits for request 3");
    assert.equal(await post(5, 5, 50), 204, "the sender gave up request 3");
    assert.deepEqual(indexes(), [10, 20, 40, 50]);
    assert.equal(await post(3, 3, 30), 204);
    assert.deepEqual(indexes(), [10, 20, 40, 50], "a late request is dropped, not reordered");
    assert.equal(await post(9, 5, 90), 400, "outside the sender's window");
  } finally {
    await b.close();
  }
});

Deno.test("peer transport: the fault hook drops outgoing and incoming messages", async () => {
  const [a, b, c] = await Promise.all([1, 2, 3].map((id) => Member.start(id)));
  try {
    connect([a, b, c], [1, 2, 3]);
    a.t.setFault((m) => m.type === "MsgHeartbeat");
    b.t.setFault((m) => m.from === 3 && m.index % 2 === 1);
    for (let i = 0; i < 10; i++) {
      a.t.send([msg("MsgHeartbeat", 1, 2, i), msg("MsgApp", 1, 2, i)]);
      c.t.send([msg("MsgApp", 3, 2, i)]);
    }
    a.t.send([msg("MsgApp", 1, 2, 100)]);
    c.t.send([msg("MsgApp", 3, 2, 100)]);
    const done = (from: number) => b.received.some((m) => m.from === from && m.index === 100);
    await b.until(() => done(1) && done(3), "both last messages arrived");
    const fromA = b.received.filter((m) => m.from === 1);
    assert.ok(fromA.every((m) => m.type === "MsgApp"));
    assert.deepEqual(fromA.map((m) => m.index), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 100]);
    const fromC = b.received.filter((m) => m.from === 3).map((m) => m.index);
    assert.deepEqual(fromC, [0, 2, 4, 6, 8, 100]);
    a.t.setFault(undefined);
    a.t.send([msg("MsgHeartbeat", 1, 2, 200)]);
    await b.until(
      () => b.received.some((m) => m.index === 200),
      "heartbeat after the fault is cleared",
    );
  } finally {
    await Promise.all([a.close(), b.close(), c.close()]);
  }
});

Deno.test("peer transport: an unreachable peer is reported, send never throws, the next URL is tried", async () => {
  const [a, b] = await Promise.all([1, 2].map((id) => Member.start(id)));
  try {
    a.t.setPeer(2, [deadUrl(), ...b.t.urls]);
    a.t.send([msg("MsgApp", 1, 2, 1)]);
    a.t.send([msg("MsgApp", 1, 9, 1)]); // unknown peer: dropped
    await a.until(() => a.unreachable.length === 1, "unreachable reported");
    assert.deepEqual(a.unreachable, [2]);
    a.t.send([msg("MsgApp", 1, 2, 2)]);
    // (A message that waited for the connection may go too: loss is allowed, not required.)
    await b.until(() => b.received.some((m) => m.index === 2), "delivered through the second URL");
    assert.ok(b.received.every((m) => m.to === 2 && m.from === 1));
    assert.deepEqual(a.unreachable, [2]);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

Deno.test("peer transport: another cluster's requests are refused with 412", async () => {
  let members: unknown = [];
  const [a, b] = await Promise.all([
    Member.start(1, { clusterId: 0x1n }),
    Member.start(2, { handlers: { "/members": () => members } }),
  ]);
  try {
    a.t.setPeer(2, b.t.urls);
    a.t.send([msg("MsgApp", 1, 2, 1)]);
    await a.until(() => a.unreachable.length === 1, "refusal reported as unreachable");
    assert.deepEqual(b.received, []);
    const res = await fetch(`${b.t.urls[0]}/raft/messages`, {
      method: "POST",
      body: encodeMessages([msg("MsgApp", 1, 2, 1)]),
      headers: { "x-etcd-cluster-id": "1", "x-server-from": "1" },
    });
    assert.equal(res.status, 412);
    assert.equal((await res.text()).trim(), "cluster ID mismatch");
    assert.deepEqual(b.received, []);
    const missing = await fetch(`${b.t.urls[0]}/v3/kv/range`, { method: "POST", body: "{}" });
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
    members = [{ id: "1", name: "a" }];
    const list = await fetch(`${b.t.urls[0]}/members`);
    assert.deepEqual(await list.json(), members);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

Deno.test("peer transport: a snapshot of a few MiB is streamed end to end", async () => {
  const SIZE = 5 * 1024 * 1024 + 123;
  const original = new Uint8Array(SIZE);
  for (let off = 0; off < SIZE; off += 65536) {
    crypto.getRandomValues(original.subarray(off, Math.min(SIZE, off + 65536)));
  }
  let done = 0;
  const a = await Member.start(1, {
    openSnapshot: async (m) => {
      const file = `${a.dir}/outgoing-${m.to}.db`;
      await Deno.writeFile(file, original);
      const snapshot = m.snapshot!;
      return {
        message: {
          ...m,
          snapshot: {
            ...snapshot,
            metadata: { ...snapshot.metadata, confState: { voters: [1, 2, 3], learners: [] } },
          },
        },
        file,
        done: () => {
          done++;
          Deno.removeSync(file);
        },
      };
    },
  });
  const b = await Member.start(2);
  try {
    a.t.setPeer(2, b.t.urls);
    a.t.setPeer(3, [deadUrl()]);
    const snap = (to: number): Message => ({
      ...msg("MsgSnap", 1, to, 0),
      snapshot: {
        metadata: { index: 42, term: 7, confState: { voters: [1, 2], learners: [] } },
        data: new Uint8Array(0),
      },
    });
    a.t.send([snap(2), snap(2), snap(3)]); // the second waits for nothing: one snapshot at a time
    await b.until(() => b.snapshots.length === 1, "snapshot delivered");
    await a.until(() => a.snapshotReports.length === 2, "both snapshots reported");
    const [m, file] = b.snapshots[0];
    assert.equal(file, `${b.dir}/snap/7-42.snap`);
    assert.deepEqual(m.snapshot!.metadata, {
      index: 42,
      term: 7,
      confState: { voters: [1, 2, 3], learners: [] },
    });
    assert.equal(m.from, 1);
    const received = await Deno.readFile(file);
    assert.equal(received.byteLength, SIZE);
    assert.ok(received.every((v, i) => v === original[i]), "the file arrived intact");
    assert.deepEqual([...Deno.readDirSync(`${b.dir}/snap`)].map((e) => e.name), ["7-42.snap"]);
    assert.deepEqual(a.snapshotReports.sort(), [[2, false], [3, true]]);
    assert.deepEqual(a.unreachable, [3]);
    assert.equal(done, 2);
    assert.deepEqual(b.received, []);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

for (
  const mode of [
    { name: "websocket", websocket: true, streams: false },
    { name: "stream", websocket: false, streams: true },
    { name: "a request per batch", websocket: false, streams: false },
  ]
) {
  const streams = mode.streams;
  Deno.test(
    `peer transport: the queue to a peer that does not answer stays bounded (${mode.name})`,
    async () => {
      // Accepts connections and never reads or answers: the stream's buffer
      // and the kernel's fill up, or requests stay in flight.
      const hole = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const conns: Deno.Conn[] = [];
      const accepting = (async () => {
        for await (const conn of hole) conns.push(conn);
      })();
      const a = await Member.start(1, { websocket: mode.websocket, streams });
      try {
        a.t.setPeer(2, [`http://127.0.0.1:${(hole.addr as Deno.NetAddr).port}`]);
        let maxLength = 0;
        // A stream takes MAX_PEER_STREAM_BUFFER_BYTES (and the socket some more) before the queue grows.
        const sends = 3 * MAX_PEER_QUEUE_MESSAGES +
          (streams ? 2 * MAX_PEER_STREAM_BUFFER_BYTES / 100 : 0);
        for (let i = 0; i < sends; i++) {
          a.t.send([msg("MsgApp", 1, 2, i, payload(i))]);
          maxLength = Math.max(maxLength, a.t.queueLength(2));
          assert.ok(a.t.queueLength(2) <= MAX_PEER_QUEUE_MESSAGES);
          if (i % 1000 === 0) await yieldTask();
        }
        assert.equal(maxLength, MAX_PEER_QUEUE_MESSAGES, "the queue filled up to its bound");
        assert.ok(a.t.inflight(2) >= 1 && a.t.inflight(2) <= MAX_PEER_INFLIGHT_REQUESTS);
        await a.until(() => a.unreachable.length > 0, "dropped MsgApps reported");
        assert.ok(a.unreachable.every((id) => id === 2));
        // The bytes bound: large entries fill it long before the count does.
        a.t.removePeer(2);
        a.t.setPeer(2, [`http://127.0.0.1:${(hole.addr as Deno.NetAddr).port}`]);
        const big = new Uint8Array(1024 * 1024);
        let maxBytes = 0;
        for (let i = 0; i < 200; i++) {
          a.t.send([msg("MsgApp", 1, 2, i, big)]);
          maxBytes = Math.max(maxBytes, a.t.queueBytes(2));
          assert.ok(a.t.queueBytes(2) <= MAX_PEER_QUEUE_BYTES);
          if (i % 10 === 0) await yieldTask();
        }
        assert.ok(
          maxBytes > MAX_PEER_QUEUE_BYTES - 2 * 1024 * 1024,
          "the queue filled up to its bytes bound",
        );
        assert.ok(a.t.queueLength(2) < 200);
      } finally {
        await a.close();
        hole.close();
        await accepting.catch(() => {});
        for (const c of conns) c.close();
      }
    },
  );
}

for (const websocket of [true, false]) {
  Deno.test(
    `peer transport: a connection the peer stopped reading is given up and another opened (${
      websocket ? "websocket" : "stream"
    })`,
    async () => {
      const hole = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const conns: Deno.Conn[] = [];
      const accepting = (async () => {
        for await (const conn of hole) conns.push(conn);
      })();
      const a = await Member.start(1, { stallTimeoutMs: 200, websocket });
      try {
        a.t.setPeer(2, [`http://127.0.0.1:${(hole.addr as Deno.NetAddr).port}`]);
        const big = new Uint8Array(256 * 1024);
        // Fill the stream and the socket until the queue grows.
        for (let i = 0; i < 400 && a.t.queueLength(2) === 0; i++) {
          a.t.send([msg("MsgApp", 1, 2, i, big)]);
          await yieldTask();
        }
        assert.ok(a.t.queueLength(2) > 0, "the stream stopped taking messages");
        assert.equal(conns.length, 1);
        await new Promise((r) => setTimeout(r, 300));
        // Raft sends at least a heartbeat per tick: each send looks at the stream.
        for (let i = 0; i < 100 && conns.length < 2; i++) {
          a.t.send([msg("MsgHeartbeat", 1, 2, 0)]);
          await new Promise((r) => setTimeout(r, 20));
        }
        assert.ok(conns.length >= 2, "another connection opened");
      } finally {
        await a.close();
        hole.close();
        await accepting.catch(() => {});
        for (const c of conns) c.close();
      }
    },
  );
}

Deno.test("peer transport: https without TLS settings and taken addresses are refused", async () => {
  const a = await Member.start(1);
  const options = optionsStub();
  try {
    await assert.rejects(
      PeerTransport.listen([new URL("https://127.0.0.1:0")], options),
      /^Error: cannot listen on TLS for 127\.0\.0\.1:0: KeyFile and CertFile are not presented$/,
    );
    await assert.rejects(
      PeerTransport.listen([LOCAL, new URL(a.t.urls[0])], options),
      AddressInUseError,
    );
  } finally {
    await a.close();
    Deno.removeSync(`${options.snapDir}/..`, { recursive: true });
  }
});

function optionsStub(): PeerTransportOptions {
  return {
    id: 5,
    clusterId: CLUSTER,
    snapDir: `${Deno.makeTempDirSync({ prefix: "cairn-peer-stub-" })}/snap`,
    deliver: () => {},
    deliverSnapshot: () => {},
    openSnapshot: () => Promise.reject(new Error("none")),
    reportUnreachable: () => {},
    reportSnapshot: () => {},
  };
}

Deno.test("peer transport: a proposal forwarded again keeps its proposer as `from` and arrives", async () => {
  const [a, b] = await Promise.all([1, 2].map((id) => Member.start(id)));
  try {
    a.t.setPeer(2, b.t.urls);
    // Member 3 forwarded it to 1, which no longer leads and forwards it to 2.
    a.t.send([{ ...msg("MsgProp", 1, 2, 0, payload(7)), from: 3 }]);
    await b.until(() => b.received.length === 1, "the proposal arrives");
    assert.equal(b.received[0].from, 3);
    assert.equal(b.received[0].type, "MsgProp");
    // Anything else must be the sender's own.
    assert.throws(() => a.t.send([{ ...msg("MsgApp", 1, 2, 1), from: 3 }]), /forwarded proposal/);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});
