/**
 * server/raftnode/ready.ts: the order of one Ready's handling, synchronous
 * and asynchronous ports, conf changes, snapshots and read states. The Readys
 * are made by hand over a stand-in for the RawNode, so each case is exact.
 */
import assert from "node:assert/strict";
import { InvariantError } from "../../core/invariant.ts";
import {
  type ConfChange,
  encodeConfChange,
  type Entry,
  MemoryStorage,
  msg,
  type RawNode,
  type ReadState,
  type Ready,
} from "../../core/raft/mod.ts";
import { ReadyHandler, type ReadyPorts } from "../../server/raftnode/ready.ts";

const enc = new TextEncoder();

function entry(
  index: number,
  type: Entry["type"] = "normal",
  data: Uint8Array = new Uint8Array(),
): Entry {
  return { index, term: 2, type, data };
}

function ready(fields: Partial<Ready>): Ready {
  return {
    readStates: [],
    entries: [],
    committedEntries: [],
    messages: [],
    mustSync: false,
    ...fields,
  };
}

/** A stand-in RawNode at applied index 1 that records what the handler calls on it. */
function fakeRaw(calls: string[]): RawNode {
  return {
    logView: () => ({ applied: 1 }),
    advance: () => calls.push("advance"),
    applyConfChange: (cc: ConfChange) => {
      calls.push(`confChange ${cc.type} ${cc.nodeId}`);
      return { voters: [1, cc.nodeId], learners: [] };
    },
  } as unknown as RawNode;
}

/** A storage at index 1, term 1, as a new member's. */
function storage(): MemoryStorage {
  const s = new MemoryStorage();
  s.applySnapshot({
    metadata: { index: 1, term: 1, confState: { voters: [1], learners: [] } },
    data: new Uint8Array(),
  });
  s.setHardState({ term: 1, vote: 0, commit: 1 });
  return s;
}

/** Ports that record every call in `calls`. */
function recording(calls: string[]): ReadyPorts {
  return {
    persistence: {
      save: (hs, entries, sync) => {
        calls.push(`save ${hs?.term ?? "-"} ${entries.map((e) => e.index)} ${sync}`);
        return undefined;
      },
    },
    transport: { send: (messages) => calls.push(`send ${messages.length}`) },
    stateMachine: {
      apply: (entries) => calls.push(`apply ${entries.map((e) => e.index)}`),
      restore: (snap) => calls.push(`restore ${snap.metadata.index}`),
      confChanged: (_cc, cs, index) => calls.push(`confChanged ${index} ${cs.voters}`),
      read: (rs) => calls.push(`read ${rs.index}`),
    },
  };
}

Deno.test("ready: persist, then send, then apply, then advance; synchronous ports finish at once", () => {
  const calls: string[] = [];
  const s = storage();
  const handler = new ReadyHandler(fakeRaw(calls), s, recording(calls));
  const rd = ready({
    hardState: { term: 2, vote: 1, commit: 3 },
    entries: [entry(2), entry(3)],
    committedEntries: [entry(2), entry(3)],
    messages: [msg({ type: "MsgApp", to: 2, from: 1 })],
    mustSync: true,
  });
  assert.equal(handler.handle(rd), undefined);
  assert.deepEqual(calls, ["save 2 2,3 true", "send 1", "apply 2,3", "advance"]);
  assert.equal(s.lastIndex(), 3);
  assert.deepEqual(s.hardState(), { term: 2, vote: 1, commit: 3 });
  assert.equal(handler.term, 2);
  assert.equal(handler.applied, 3);
});

Deno.test("ready: nothing after the write happens before an asynchronous write is done", async () => {
  const calls: string[] = [];
  const s = storage();
  const ports = recording(calls);
  const write = Promise.withResolvers<void>();
  ports.persistence = { save: () => write.promise };
  const handler = new ReadyHandler(fakeRaw(calls), s, ports);
  const pending = handler.handle(ready({ entries: [entry(2)], committedEntries: [entry(2)] }));
  assert.ok(pending instanceof Promise);
  await Promise.resolve();
  assert.deepEqual(calls, []);
  assert.equal(s.lastIndex(), 1, "the raft Storage follows only what is durable");
  write.resolve();
  await pending;
  assert.deepEqual(calls, ["send 0", "apply 2", "advance"]);
  assert.equal(s.lastIndex(), 2);
});

Deno.test("ready: with leaderSendsFirst, a leader sends before its write and a follower after", async () => {
  const calls: string[] = [];
  const ports = recording(calls);
  const write = Promise.withResolvers<void>();
  ports.persistence = {
    save: (_hs, entries) => {
      calls.push(`save ${entries.map((e) => e.index)}`);
      return write.promise;
    },
  };
  ports.leaderSendsFirst = true;
  let leader = true;
  const raw = { ...fakeRaw(calls), isLeader: () => leader } as unknown as RawNode;
  const handler = new ReadyHandler(raw, storage(), ports);
  const appends = [
    msg({ type: "MsgApp", to: 2, from: 1 }),
    msg({ type: "MsgApp", to: 3, from: 1 }),
  ];
  const pending = handler.handle(ready({ entries: [entry(2)], messages: appends }));
  await Promise.resolve();
  assert.deepEqual(calls, ["send 2", "save 2"], "the appends leave while the leader writes");
  write.resolve();
  await pending;
  assert.deepEqual(calls, ["send 2", "save 2", "advance"]);
  // Stepped down in this Ready: its messages (a vote) wait for the write.
  calls.length = 0;
  leader = false;
  const vote = [msg({ type: "MsgVoteResp", to: 2, from: 1 })];
  await handler.handle(ready({
    softState: { lead: 0, raftState: "follower" },
    hardState: { term: 3, vote: 2, commit: 1 },
    messages: vote,
  }));
  assert.deepEqual(calls, ["save ", "send 1", "advance"]);
});

Deno.test("ready: committed entries wait for the state machine's backpressure", async () => {
  const calls: string[] = [];
  const ports = recording(calls);
  const room = Promise.withResolvers<void>();
  ports.stateMachine.admit = () => room.promise;
  const handler = new ReadyHandler(fakeRaw(calls), storage(), ports);
  const pending = handler.handle(ready({ entries: [entry(2)], committedEntries: [entry(2)] }));
  await Promise.resolve();
  assert.deepEqual(calls, ["save - 2 false", "send 0"]);
  room.resolve();
  await pending;
  assert.deepEqual(calls, ["save - 2 false", "send 0", "apply 2", "advance"]);
});

Deno.test("ready: a conf change ends its batch and takes effect in Raft before the next", () => {
  const calls: string[] = [];
  const handler = new ReadyHandler(fakeRaw(calls), storage(), recording(calls));
  const cc = encodeConfChange({ type: "addNode", nodeId: 4 });
  const committed = [entry(2), entry(3, "confChange", cc), entry(4), entry(5)];
  handler.handle(ready({ entries: committed, committedEntries: committed }));
  assert.deepEqual(calls.slice(2), [
    "apply 2,3",
    "confChange addNode 4",
    "confChanged 3 1,4",
    "apply 4,5",
    "advance",
  ]);
  assert.deepEqual(handler.confState, { voters: [1, 4], learners: [] });
});

Deno.test("ready: a snapshot is written to the Storage, then restored before the entries after it", () => {
  const calls: string[] = [];
  const s = storage();
  const handler = new ReadyHandler(fakeRaw(calls), s, recording(calls));
  const snapshot = {
    metadata: { index: 10, term: 2, confState: { voters: [1, 2, 3], learners: [] } },
    data: enc.encode("state"),
  };
  handler.handle(ready({ snapshot, entries: [entry(11)], committedEntries: [entry(11)] }));
  assert.deepEqual(calls.slice(2), ["restore 10", "apply 11", "advance"]);
  assert.equal(s.firstIndex(), 11);
  assert.equal(s.lastIndex(), 11);
  assert.equal(handler.applied, 11);
  assert.deepEqual(handler.confState.voters, [1, 2, 3]);
});

Deno.test("ready: a read state is handed over once the applied index reaches it", () => {
  const calls: string[] = [];
  const handler = new ReadyHandler(fakeRaw(calls), storage(), recording(calls));
  const rs = (index: number): ReadState => ({ index, requestCtx: enc.encode(`r${index}`) });
  handler.handle(ready({ readStates: [rs(3), rs(1)] }));
  assert.deepEqual(calls, ["save -  false", "send 0", "read 1", "advance"]);
  calls.length = 0;
  handler.handle(ready({ entries: [entry(2)], committedEntries: [entry(2)] }));
  assert.ok(!calls.includes("read 3"));
  calls.length = 0;
  handler.handle(ready({ entries: [entry(3)], committedEntries: [entry(3)] }));
  assert.deepEqual(calls, ["save - 3 false", "send 0", "apply 3", "read 3", "advance"]);
});

Deno.test("ready: committed entries must follow the applied index", () => {
  const calls: string[] = [];
  const handler = new ReadyHandler(fakeRaw(calls), storage(), recording(calls));
  assert.throws(
    () => handler.handle(ready({ entries: [entry(2), entry(3)], committedEntries: [entry(3)] })),
    InvariantError,
  );
  assert.ok(!calls.includes("advance"), "a Ready that failed is not advanced");
});
