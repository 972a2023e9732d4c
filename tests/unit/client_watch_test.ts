/**
 * Client.watch against a scripted fetch: each connection's stream is fed by
 * the test, so resumption (start revisions, failover, backoff), duplicate
 * suppression, progress notifications, fragments and cancels are pinned
 * without a server.
 */
import { deepStrictEqual as assertEquals, rejects as assertRejects } from "node:assert/strict";
import { Client, EtcdError, isWatchCanceled, type WatchBatch } from "../../client/mod.ts";
import { WATCH_RETRY_MIN_MS } from "../../core/limits.ts";

const enc = new TextEncoder();

/** One scripted watch connection: the test pushes lines, ends or breaks it. */
class FakeStream {
  #ctrl!: ReadableStreamDefaultController<Uint8Array>;
  readonly body = new ReadableStream<Uint8Array>({
    start: (c) => {
      this.#ctrl = c;
    },
  });
  #open = true;
  result(r: unknown): this {
    return this.raw(JSON.stringify({ result: r }) + "\n");
  }
  raw(text: string): this {
    if (this.#open) this.#ctrl.enqueue(enc.encode(text));
    return this;
  }
  end(): void {
    if (this.#open) this.#ctrl.close();
    this.#open = false;
  }
  fail(): void {
    if (this.#open) this.#ctrl.error(new TypeError("error reading a body from connection"));
    this.#open = false;
  }
}

interface Call {
  url: string;
  request: Record<string, unknown>;
  at: number;
}

type Reply = FakeStream | Response | Error;

/** A fetch answering each call from `script(call number, url)`; aborting ends the stream. */
function fakeFetch(script: (n: number, url: string) => Reply) {
  const calls: Call[] = [];
  const f = (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = String(input);
    const body = JSON.parse(String(init?.body));
    calls.push({ url, request: body.create_request, at: performance.now() });
    const r = script(calls.length, url);
    if (r instanceof Error) return Promise.reject(r);
    if (r instanceof Response) return Promise.resolve(r);
    init?.signal?.addEventListener("abort", () => r.fail());
    return Promise.resolve(new Response(r.body, { status: 200 }));
  };
  return { fetch: f as typeof fetch, calls };
}

const header = (revision: number) => ({
  cluster_id: "1",
  member_id: "2",
  revision: String(revision),
  raft_term: "3",
});
const created = (revision: number) => ({ header: header(revision), created: true });
const put = (key: string, rev: number) => ({
  kv: {
    key: btoa(key),
    create_revision: String(rev),
    mod_revision: String(rev),
    version: "1",
    value: btoa("v"),
  },
});
const events = (revision: number, ...evs: unknown[]) => ({ header: header(revision), events: evs });
const refused = () =>
  new TypeError("client error (Connect): tcp connect error: Connection refused (os error 111)");

/** Mod revisions of each batch's events (progress: `P<revision>`). */
function summary(batches: WatchBatch[]): (number[] | string)[] {
  return batches.map((b) =>
    b.events.length === 0 ? `P${b.revision}` : b.events.map((e) => e.kv.mod_revision)
  );
}

async function collect(iterable: AsyncIterable<WatchBatch>, count: number): Promise<WatchBatch[]> {
  const out: WatchBatch[] = [];
  for await (const b of iterable) {
    out.push(b);
    if (out.length === count) break;
  }
  return out;
}

Deno.test("watch sends one create request with the range and options, etcd's JSON names", async () => {
  const s = new FakeStream().result(created(4));
  const { fetch, calls } = fakeFetch(() => s);
  const client = new Client({ endpoints: ["a:2379"], fetch });
  const w = client.watch("k", { prefix: true, prevKv: true, filters: ["NODELETE"] });
  assertEquals(await w.created, 4);
  assertEquals(calls[0].url, "http://a:2379/v3/watch");
  assertEquals(calls[0].request, {
    key: "aw==",
    range_end: "bA==",
    prev_kv: true,
    filters: ["NODELETE"],
  });
  assertEquals(w.nextRevision, 5);
  w.close();
  assertEquals(await collect(w, 1), []);
});

Deno.test("a lost stream resumes after the last delivered revision; a re-sent event is dropped", async () => {
  const streams = [new FakeStream(), new FakeStream()];
  const { fetch, calls } = fakeFetch((n) => streams[n - 1]);
  const client = new Client({ endpoints: ["a"], fetch });
  const w = client.watch("k", { prefix: true });
  streams[0].result(created(5)).result(events(6, put("k1", 6))).result(
    events(7, put("k2", 7), put("k3", 7)),
  );
  const got = collect(w, 4);
  await new Promise((r) => setTimeout(r, 10));
  streams[0].end();
  // The new stream repeats revision 7 (a server must not, but the client copes) then goes on.
  streams[1].result(created(9)).result(events(9, put("k3", 7), put("k4", 8))).result(
    events(9, put("k5", 9)),
  );
  const batches = await got;
  assertEquals(summary(batches), [[6], [7, 7], [8], [9]]);
  assertEquals(calls.map((c) => c.request.start_revision), [undefined, "8"]);
});

Deno.test("without a start revision, a stream lost before any event resumes after the created revision", async () => {
  const streams = [new FakeStream(), new FakeStream()];
  const { fetch, calls } = fakeFetch((n) => streams[n - 1]);
  const client = new Client({ endpoints: ["a"], fetch });
  const w = client.watch("k");
  streams[0].result(created(10));
  await w.created;
  streams[0].fail();
  streams[1].result(created(12)).result(events(11, put("k", 11)));
  assertEquals(summary(await collect(w, 1)), [[11]]);
  assertEquals(calls.map((c) => c.request.start_revision), [undefined, "11"]);
});

Deno.test("a start revision is kept until something is delivered; endpoints are tried in turn", async () => {
  const b = new FakeStream();
  const { fetch, calls } = fakeFetch((_n, url) => url.startsWith("http://b") ? b : refused());
  const client = new Client({ endpoints: ["a", "b", "c"], fetch });
  const w = client.watch("k", { startRevision: 3 });
  b.result(created(20)).result(events(20, put("k", 3)));
  assertEquals(summary(await collect(w, 1)), [[3]]);
  assertEquals(calls.map((c) => [new URL(c.url).host, c.request.start_revision]), [
    ["a", "3"],
    ["b", "3"],
  ]);
});

Deno.test("a progress notification is an empty batch and moves the resume revision", async () => {
  const streams = [new FakeStream(), new FakeStream()];
  const { fetch, calls } = fakeFetch((n) => streams[n - 1]);
  const client = new Client({ endpoints: ["a"], fetch });
  const w = client.watch("k", { progressNotify: true });
  streams[0].result(created(5)).result({ header: header(30) });
  const got = collect(w, 2);
  await new Promise((r) => setTimeout(r, 10));
  streams[0].end();
  streams[1].result(created(31)).result(events(31, put("k", 31)));
  assertEquals(summary(await got), ["P30", [31]]);
  assertEquals(calls[0].request.progress_notify, true);
  assertEquals(calls[1].request.start_revision, "31");
});

Deno.test("fragments of one response come out as one batch", async () => {
  const s = new FakeStream();
  const { fetch } = fakeFetch(() => s);
  const w = new Client({ endpoints: ["a"], fetch }).watch("k", { prefix: true });
  s.result(created(1));
  s.result({ ...events(2, put("k1", 2)), fragment: true });
  s.result({ ...events(2, put("k2", 2)), fragment: true });
  s.result(events(2, put("k3", 2)));
  assertEquals(summary(await collect(w, 1)), [[2, 2, 2]]);
});

Deno.test("a compacted watch ends the iteration with etcd's error and the compact revision", async () => {
  const s = new FakeStream();
  const { fetch } = fakeFetch(() => s);
  const w = new Client({ endpoints: ["a"], fetch }).watch("k", { startRevision: 2 });
  s.result(created(9)).result({
    header: { cluster_id: "1", member_id: "2", raft_term: "3" },
    canceled: true,
    compact_revision: "7",
  });
  const err = await collect(w, 1).catch((e) => e);
  assertEquals(isWatchCanceled(err), true);
  assertEquals([err.message, err.code, err.compactRevision, err.response.header.revision], [
    "etcdserver: mvcc: required revision has been compacted",
    11,
    7,
    0,
  ]);
});

Deno.test("an abort while waiting for events ends the iteration without error", async () => {
  const s = new FakeStream();
  const { fetch } = fakeFetch(() => s);
  const ac = new AbortController();
  const w = new Client({ endpoints: ["a"], fetch }).watch("k", { signal: ac.signal });
  s.result(created(1));
  const got = collect(w, 5);
  setTimeout(() => ac.abort(), 20);
  assertEquals(await got, []);
});

Deno.test("an abort while the endpoint is down ends the iteration without error", async () => {
  const { fetch, calls } = fakeFetch(() => refused());
  const ac = new AbortController();
  const w = new Client({ endpoints: ["a"], fetch }).watch("k", { signal: ac.signal });
  setTimeout(() => ac.abort(), 5 * WATCH_RETRY_MIN_MS);
  assertEquals(await collect(w, 1), []);
  await assertRejects(w.created, { name: "AbortError" });
  // Backoff: 50, 100, 200 ms… so a handful of attempts in 250 ms, not hundreds.
  assertEquals(calls.length >= 2 && calls.length <= 5, true, `${calls.length} attempts`);
  assertEquals(calls[2].at - calls[1].at >= 2 * WATCH_RETRY_MIN_MS - 5, true);
});

Deno.test("503 and an Unavailable error line are retried; other HTTP errors end the watch", async () => {
  const streams = [new FakeStream(), new FakeStream()];
  const unavailable = new Response(
    JSON.stringify({ error: "etcdserver: no leader", message: "etcdserver: no leader", code: 14 }),
    { status: 503 },
  );
  const { fetch, calls } = fakeFetch((n) => n === 1 ? unavailable : streams[n - 2]);
  const w = new Client({ endpoints: ["a"], fetch }).watch("k");
  streams[0].result(created(4)).raw(
    '{"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader","http_status":"Service Unavailable"}}\n',
  );
  streams[1].result(created(4)).result(events(5, put("k", 5)));
  assertEquals(summary(await collect(w, 1)), [[5]]);
  assertEquals(calls.length, 3);

  const notFound = new Response("404 page not found\n", { status: 404 });
  const w2 = new Client({ endpoints: ["a"], fetch: fakeFetch(() => notFound).fetch }).watch("k");
  const err = await collect(w2, 1).catch((e) => e);
  assertEquals(err instanceof EtcdError, true);
  assertEquals([err.code, err.httpStatus], [5, 404]);
});

Deno.test("a connection that does not answer created within the timeout moves to the next endpoint", async () => {
  const b = new FakeStream().result(created(2)).result(events(3, put("k", 3)));
  const { fetch, calls } = fakeFetch((_, url) => url.startsWith("http://a") ? new FakeStream() : b);
  const w = new Client({ endpoints: ["a", "b"], fetch }).watch("k", { timeout: 30 });
  assertEquals(summary(await collect(w, 1)), [[3]]);
  assertEquals(calls.map((c) => new URL(c.url).host), ["a", "b"]);
});
