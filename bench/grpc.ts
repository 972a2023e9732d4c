/**
 * gRPC load on etcd's `etcdserverpb.KV` service, through @grpc/grpc-js: the
 * same load for real etcd 3.4 and for cairn.
 *
 * What it measures: closed-loop unary calls for a fixed time, each of
 * `clients` call slots sending its next call as soon as its last one is
 * answered, so `clients` calls are in flight at all times. The calls are
 * `KV.Put` of a 256-byte value (bench/wrk.lua's size) or `KV.Range` of one
 * key (linearizable), the keys going round `bench/key0` … `bench/key999`.
 * Reported for each run:
 * - calls per second (sent and answered within the counted time);
 * - latency p50/p99, from sending a call to its answer (1 % buckets);
 * - CPU in % of one core: the client's (all its processes), the server's
 *   (when its pid is known) and the rest of the machine's (other processes,
 *   interrupts, time the hypervisor stole), from /proc; a busy machine shows
 *   there. The server's CPU per call, in µs, compares servers independently
 *   of the client, which on a 2-core machine takes as much CPU as the server;
 * - errors: a run with any error (failed call, or an answer that is not a
 *   real one) is reported as failed.
 *
 * How:
 * - The slots are spread over `channels` gRPC channels, each with its own
 *   subchannel pool (`grpc.use_local_subchannel_pool`), so over as many
 *   HTTP/2 connections: one connection would funnel every call through one
 *   socket, one server-side reader and (cairn) one worker thread.
 * - With `procs` > 1 the slots and channels are split over that many child
 *   processes of this script, connected first and then started together;
 *   this process only adds up their figures.
 * - Requests are encoded once per key before the run (protobufjs `Writer`:
 *   `PutRequest{key=1, value=2}`, `RangeRequest{key=1}`) and sent as they
 *   are; answers are decoded by hand only as far as needed to check that
 *   they are real: `header.revision` > 0 for both, and for a range exactly
 *   one kv and `count` 1 (the keys are written before any range run).
 * - The first {@linkcode WARMUP_SECONDS} of every run are load but not
 *   counted (connections up, code compiled).
 *
 * Usage:
 *
 *     deno run -A bench/grpc.ts --endpoint 127.0.0.1:2379 --op put|range \
 *       [--clients 64] [--seconds 10] [--channels 8] [--procs 2] [--server-pid PID]
 *     deno run -A bench/grpc.ts --compare [--seconds 10] [--channels 8] [--procs 2] [--no-readme]
 *
 * `--compare` (also `deno task bench:grpc`) starts a fresh etcd 3.4 (its
 * default flags; own data dir, free client and peer ports on 127.0.0.1),
 * runs the sequence on it — a put of each of the 1,000 keys, then puts from
 * 64 slots, puts from 1 slot, ranges from 64 slots — stops it, then does the
 * same with a fresh cairn (`main.ts`, the same flags). It prints the tables,
 * with the ratios cairn / etcd, and rewrites the "gRPC load" section of
 * bench/README.md (unless `--no-readme`). A server that does not answer
 * gRPC is reported as "no gRPC". Exit status 1 if a run had errors.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import protobuf from "protobufjs";
import { Buffer } from "node:buffer";
import { parseArgs } from "node:util";
import { allocatePorts } from "../tests/integration/cluster_harness.ts";
import { rewriteReadmeSection } from "./readme.ts";

/** Distinct keys the calls go round. */
const KEYS = 1000;
/** Bytes of every put's value (bench/wrk.lua's size). */
const VALUE_BYTES = 256;
/** Seconds of load at the start of a run that are not counted. */
const WARMUP_SECONDS = 1;
/** Time allowed for a run beyond its duration before its calls are cancelled, in ms. */
const RUN_GRACE_MS = 10_000;
/** Time allowed for a server to start and answer, in ms. */
const START_TIMEOUT_MS = 60_000;
/** Time allowed for the first gRPC call to a server, in ms. */
const PROBE_TIMEOUT_MS = 3_000;
/** Time allowed for a child process to connect and report ready, in ms. */
const CHILD_READY_TIMEOUT_MS = 30_000;
/** Time allowed for a server to exit after SIGTERM, in ms. */
const EXIT_TIMEOUT_MS = 10_000;
/** Latency histogram buckets: bucket i holds latencies near exp(i / 100) - 1 µs (1 % wide). */
const HIST_BUCKETS = 2400;
/** Clock ticks per second of /proc/<pid>/stat (USER_HZ; 100 on Linux). */
const CLOCK_TICKS = 100;
/** Channels (HTTP/2 connections) by default; see bench/README.md for the choice. */
const DEFAULT_CHANNELS = 8;
/** Client processes by default; see bench/README.md for the choice. */
const DEFAULT_PROCS = 2;
/** CPU of the rest of the machine, % of one core, above which a comparison is flagged. */
const BUSY_MACHINE_PERCENT = 20;
/** Errors whose messages are kept for the report. */
const MAX_ERROR_SAMPLES = 3;

const PUT_METHOD = "/etcdserverpb.KV/Put";
const RANGE_METHOD = "/etcdserverpb.KV/Range";

/** The call a run makes. */
export type Op = "put" | "range";

/** Options of one load run. */
export interface LoadOptions {
  /** host:port of the server's client port. */
  endpoint: string;
  op: Op;
  /** Calls in flight at once. */
  clients: number;
  /** Channels (HTTP/2 connections) the calls are spread over. */
  channels: number;
  /** Counted seconds of load (after {@linkcode WARMUP_SECONDS}). */
  seconds: number;
  /** Processes the clients and channels are split over; 1 runs in this process. */
  procs: number;
  /** The server's pid, to report its CPU; optional. */
  serverPid?: number;
}

/** The figures of one run (of one process, or added up over several). */
export interface LoadResult {
  /** Calls sent and answered within the counted time. */
  calls: number;
  /** Calls that failed, counted or not. */
  errors: number;
  /** Up to {@linkcode MAX_ERROR_SAMPLES} error messages. */
  errorSamples: string[];
  /** Counted seconds. */
  seconds: number;
  /** Latency histogram, see {@linkcode HIST_BUCKETS}. */
  hist: number[];
  /** CPU seconds the client used during the counted time (all its processes). */
  clientCpu: number;
  /** CPU seconds the server used during the counted time, if its pid was given. */
  serverCpu?: number;
  /** CPU seconds the whole machine was busy during the counted time (all cores). */
  machineCpu?: number;
  /** CPU seconds the hypervisor took from this machine during the counted time. */
  stealCpu?: number;
}

// ---------------------------------------------------------------------------
// Wire: requests encoded once, answers checked by hand

const encoder = new TextEncoder();

/** Key `i` of the set, as bench/wrk.lua names them. */
function key(i: number): Uint8Array {
  return encoder.encode(`bench/key${i}`);
}

/**
 * grpc-js frames serialized messages with `Buffer#copy`, so they must be
 * Buffers; protobufjs gives one when it finds node:buffer (it does under
 * Deno), a plain Uint8Array otherwise.
 */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** `PutRequest{key=1, value=2}` for each key. */
export function putRequests(): Buffer[] {
  const value = new Uint8Array(VALUE_BYTES).fill(0x78); // "x", as bench/wrk.lua
  return Array.from(
    { length: KEYS },
    (_, i) =>
      asBuffer(protobuf.Writer.create().uint32(10).bytes(key(i)).uint32(18).bytes(value).finish()),
  );
}

/** `RangeRequest{key=1}` for each key. */
export function rangeRequests(): Buffer[] {
  return Array.from(
    { length: KEYS },
    (_, i) => asBuffer(protobuf.Writer.create().uint32(10).bytes(key(i)).finish()),
  );
}

/** What an answer was found to hold. */
export interface Answer {
  /** `header.revision`; 0 when there is no header. */
  revision: number;
  /** Number of `kvs` (field 2; a PutResponse's `prev_kv`, which is not asked for). */
  kvs: number;
  /** RangeResponse's `count`. */
  count: number;
}

/** A malformed answer. */
export class DecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DecodeError";
  }
}

/** Reads varints and skips fields of a protobuf message. */
class Cursor {
  pos: number;
  constructor(readonly buf: Uint8Array, pos = 0) {
    this.pos = pos;
  }

  /** A varint as a number (exact below 2^53, which revisions and counts are). */
  varint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.buf.length) throw new DecodeError("Truncated varint");
      const b = this.buf[this.pos++];
      result += (b & 0x7f) * scale;
      if (b < 0x80) return result;
      scale *= 128;
    }
    throw new DecodeError("Varint longer than 10 bytes");
  }

  /** Skip the value of a field of wire type `wire`. */
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.pos += this.varint();
    else if (wire === 5) this.pos += 4;
    else throw new DecodeError(`Unexpected wire type ${wire}`);
    if (this.pos > this.buf.length) throw new DecodeError("Truncated field");
  }
}

/**
 * `header.revision` (ResponseHeader field 3, in field 1), the number of
 * `kvs` (field 2) and `count` (field 4) of a PutResponse or RangeResponse.
 */
export function decodeAnswer(buf: Uint8Array): Answer {
  const c = new Cursor(buf);
  const answer: Answer = { revision: 0, kvs: 0, count: 0 };
  while (c.pos < buf.length) {
    const tag = c.varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (field === 1 && wire === 2) {
      const end = c.varint() + c.pos;
      if (end > buf.length) throw new DecodeError("Truncated header");
      while (c.pos < end) {
        const t = c.varint();
        if (t === 3 << 3) answer.revision = c.varint();
        else c.skip(t & 7);
      }
    } else if (field === 2 && wire === 2) {
      answer.kvs++;
      c.skip(wire);
    } else if (field === 4 && wire === 0) {
      answer.count = c.varint();
    } else {
      c.skip(wire);
    }
  }
  return answer;
}

/** Why `answer` to `op` is not a real one, or undefined when it is. */
function invalid(op: Op, answer: Answer): string | undefined {
  if (answer.revision <= 0) return "Answer without a header revision";
  if (op === "range" && (answer.kvs !== 1 || answer.count !== 1)) {
    return `Range answered ${answer.kvs} kvs, count ${answer.count}; expected 1`;
  }
  return undefined;
}

const passThrough = (b: Buffer): Buffer => b;

/** A failed call's status as "NAME: details". */
function statusText(err: grpc.ServiceError): string {
  return `${grpc.status[err.code] ?? err.code}: ${err.details}`;
}

// ---------------------------------------------------------------------------
// Measuring

/** Histogram bucket of a latency in µs. */
function bucket(us: number): number {
  return Math.min(HIST_BUCKETS - 1, Math.round(Math.log1p(us) * 100));
}

/** The latency at quantile `q` (0..1) of `hist`, in ms. */
export function quantileMs(hist: number[], q: number): number {
  const total = hist.reduce((a, b) => a + b, 0);
  if (total === 0) return NaN;
  const rank = Math.ceil(q * total);
  let seen = 0;
  for (let i = 0; i < hist.length; i++) {
    seen += hist[i];
    if (seen >= rank) return Math.expm1(i / 100) / 1000;
  }
  return NaN;
}

/** CPU seconds (user + system, all threads) `pid` has used; NaN if unreadable. */
function cpuSeconds(pid: number | "self"): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Fields after the command name (which may hold spaces) in parentheses.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

/** CPU seconds, all cores, the machine has been busy and has had stolen, from /proc/stat. */
function machineCpuSeconds(): { busy: number; steal: number } {
  try {
    const line = Deno.readTextFileSync("/proc/stat").split("\n", 1)[0];
    // cpu user nice system idle iowait irq softirq steal guest guest_nice
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    return { busy: (f[0] + f[1] + f[2] + f[5] + f[6]) / CLOCK_TICKS, steal: f[7] / CLOCK_TICKS };
  } catch {
    return { busy: NaN, steal: NaN };
  }
}

/**
 * Samples the server's and the machine's CPU over the counted window of a
 * run that starts now; {@linkcode WindowSampler.done} gives the differences.
 */
class WindowSampler {
  #server0 = NaN;
  #server1 = NaN;
  #machine0 = { busy: NaN, steal: NaN };
  #machine1 = { busy: NaN, steal: NaN };
  readonly #timers: ReturnType<typeof setTimeout>[];

  constructor(seconds: number, readonly serverPid?: number) {
    this.#timers = [
      setTimeout(() => this.#sample(0), WARMUP_SECONDS * 1000),
      setTimeout(() => this.#sample(1), (WARMUP_SECONDS + seconds) * 1000),
    ];
  }

  #sample(end: 0 | 1): void {
    const server = this.serverPid ? cpuSeconds(this.serverPid) : NaN;
    const machine = machineCpuSeconds();
    if (end) [this.#server1, this.#machine1] = [server, machine];
    else [this.#server0, this.#machine0] = [server, machine];
  }

  /** Add the sampled figures to `r`. */
  done(r: LoadResult): LoadResult {
    for (const t of this.#timers) clearTimeout(t);
    // The run can end before the timer that ends the window fires.
    if (Number.isNaN(this.#machine1.busy)) this.#sample(1);
    return {
      ...r,
      serverCpu: this.serverPid ? this.#server1 - this.#server0 : undefined,
      machineCpu: this.#machine1.busy - this.#machine0.busy,
      stealCpu: this.#machine1.steal - this.#machine0.steal,
    };
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Channel options: a subchannel pool per channel gives each its own connection. */
function channelOptions(): grpc.ChannelOptions {
  return {
    "grpc.use_local_subchannel_pool": 1,
    "grpc.enable_channelz": 0,
    "grpc.enable_retries": 0,
    "grpc.max_receive_message_length": 16 * 1024 * 1024,
  };
}

/** `n` connected clients of `endpoint`; rejects if one does not connect in `timeoutMs`. */
async function connect(endpoint: string, n: number, timeoutMs: number): Promise<grpc.Client[]> {
  const clients = Array.from(
    { length: n },
    () => new grpc.Client(endpoint, grpc.credentials.createInsecure(), channelOptions()),
  );
  try {
    await Promise.all(
      clients.map((c) =>
        new Promise<void>((resolve, reject) =>
          c.waitForReady(Date.now() + timeoutMs, (err) => err ? reject(err) : resolve())
        )
      ),
    );
  } catch (err) {
    for (const c of clients) c.close();
    throw err;
  }
  return clients;
}

/**
 * A connected, not yet started run in this process: {@linkcode Run.start}
 * sends the load, {@linkcode Run.result} gives its figures.
 */
class Run {
  readonly #opts: LoadOptions;
  readonly #clients: grpc.Client[];
  readonly #requests: Buffer[];
  readonly #method: string;
  readonly #hist = new Array<number>(HIST_BUCKETS).fill(0);
  #next = 0;
  #calls = 0;
  #errors = 0;
  readonly #errorSamples: string[] = [];
  readonly #inflight = new Set<grpc.ClientUnaryCall>();
  #countFrom = Infinity;
  #stopAt = Infinity;
  #cpuFrom = NaN;
  #cpuUntil = NaN;

  private constructor(opts: LoadOptions, clients: grpc.Client[]) {
    this.#opts = opts;
    this.#clients = clients;
    this.#requests = opts.op === "put" ? putRequests() : rangeRequests();
    this.#method = opts.op === "put" ? PUT_METHOD : RANGE_METHOD;
  }

  /** Connect `opts.channels` channels to `opts.endpoint`. */
  static async open(opts: LoadOptions): Promise<Run> {
    return new Run(opts, await connect(opts.endpoint, opts.channels, CHILD_READY_TIMEOUT_MS));
  }

  #error(message: string): void {
    this.#errors++;
    if (this.#errorSamples.length < MAX_ERROR_SAMPLES) this.#errorSamples.push(message);
  }

  /** Slot `slot` sends its next call, unless the run is over. */
  #send(slot: number): void {
    const sent = performance.now();
    if (sent >= this.#stopAt) return;
    const request = this.#requests[this.#next];
    this.#next = this.#next + 1 === KEYS ? 0 : this.#next + 1;
    const client = this.#clients[slot % this.#clients.length];
    const call = client.makeUnaryRequest<Buffer, Answer>(
      this.#method,
      passThrough,
      decodeAnswer,
      request,
      (err, answer) => {
        this.#inflight.delete(call);
        const done = performance.now();
        const why = err ? statusText(err) : invalid(this.#opts.op, answer!);
        // The run has failed: this slot sends no more (a dead server is not hammered).
        if (why) return this.#error(why);
        if (sent >= this.#countFrom && done <= this.#stopAt) {
          this.#calls++;
          this.#hist[bucket((done - sent) * 1000)]++;
        }
        this.#send(slot);
      },
    );
    this.#inflight.add(call);
  }

  /** Send the load for {@linkcode WARMUP_SECONDS} + `seconds`; resolves when every call is answered. */
  async start(): Promise<void> {
    const t0 = performance.now();
    this.#countFrom = t0 + WARMUP_SECONDS * 1000;
    this.#stopAt = this.#countFrom + this.#opts.seconds * 1000;
    const cpuStart = setTimeout(() => this.#cpuFrom = cpuSeconds("self"), WARMUP_SECONDS * 1000);
    const cpuEnd = setTimeout(
      () => this.#cpuUntil = cpuSeconds("self"),
      (WARMUP_SECONDS + this.#opts.seconds) * 1000,
    );
    const deadline = this.#stopAt + RUN_GRACE_MS;
    for (let slot = 0; slot < this.#opts.clients; slot++) this.#send(slot);
    while (
      this.#inflight.size > 0 || (this.#errors === 0 && performance.now() < this.#stopAt)
    ) {
      await sleep(50);
      if (performance.now() > deadline) {
        for (const call of this.#inflight) call.cancel();
        break;
      }
    }
    clearTimeout(cpuStart);
    clearTimeout(cpuEnd);
    // The last answer can come before the timer that ends the window fires.
    if (Number.isNaN(this.#cpuUntil)) this.#cpuUntil = cpuSeconds("self");
    for (const c of this.#clients) c.close();
  }

  /** The run's figures (after {@linkcode start}). */
  result(): LoadResult {
    return {
      calls: this.#calls,
      errors: this.#errors,
      errorSamples: this.#errorSamples,
      seconds: this.#opts.seconds,
      hist: this.#hist,
      clientCpu: this.#cpuUntil - this.#cpuFrom,
    };
  }
}

/** `total` split into `parts` near-equal whole shares (the first ones larger). */
function split(total: number, parts: number): number[] {
  return Array.from(
    { length: parts },
    (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0),
  );
}

/** Add up the figures of the processes of one run. */
function merge(results: LoadResult[]): LoadResult {
  const hist = new Array<number>(HIST_BUCKETS).fill(0);
  for (const r of results) r.hist.forEach((n, i) => hist[i] += n);
  return {
    calls: results.reduce((a, r) => a + r.calls, 0),
    errors: results.reduce((a, r) => a + r.errors, 0),
    errorSamples: results.flatMap((r) => r.errorSamples).slice(0, MAX_ERROR_SAMPLES),
    seconds: results[0].seconds,
    hist,
    clientCpu: results.reduce((a, r) => a + r.clientCpu, 0),
  };
}

/** One child process of a multi-process run. */
interface Child {
  proc: Deno.ChildProcess;
  lines: ReadableStreamDefaultReader<string>;
  stdin: WritableStreamDefaultWriter<Uint8Array>;
}

async function readLine(child: Child, timeoutMs: number): Promise<string> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("Child process did not answer in time")), timeoutMs);
  });
  try {
    const { value, done } = await Promise.race([child.lines.read(), timeout]);
    if (done) throw new Error("Child process ended without a result");
    return value;
  } finally {
    clearTimeout(timer);
  }
}

/** Line-split a byte stream. */
function lines(stream: ReadableStream<Uint8Array>): ReadableStream<string> {
  let rest = "";
  return stream.pipeThrough(new TextDecoderStream()).pipeThrough(
    new TransformStream<string, string>({
      transform(chunk, ctl) {
        const parts = (rest + chunk).split("\n");
        rest = parts.pop()!;
        for (const p of parts) ctl.enqueue(p);
      },
      flush(ctl) {
        if (rest) ctl.enqueue(rest);
      },
    }),
  );
}

/**
 * Run `opts` in `opts.procs` child processes: each connects its share of the
 * channels and reports ready, all start at once when told, each prints its
 * figures as JSON.
 */
async function runChildren(opts: LoadOptions): Promise<LoadResult> {
  const clients = split(opts.clients, opts.procs);
  const channels = split(Math.max(opts.channels, opts.procs), opts.procs);
  const children: Child[] = clients.map((c, i) => {
    const args = [
      "run",
      "-A",
      new URL(import.meta.url).pathname,
      "--child",
      "--endpoint",
      opts.endpoint,
      "--op",
      opts.op,
      "--clients",
      String(c),
      "--channels",
      String(Math.min(channels[i], c)),
      "--seconds",
      String(opts.seconds),
    ];
    const proc = new Deno.Command(Deno.execPath(), {
      args,
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    return { proc, lines: lines(proc.stdout).getReader(), stdin: proc.stdin.getWriter() };
  });
  try {
    for (const c of children) {
      const line = await readLine(c, CHILD_READY_TIMEOUT_MS);
      if (line !== "ready") throw new Error(`Child process failed to connect: ${line}`);
    }
    const go = encoder.encode("go\n");
    await Promise.all(children.map((c) => c.stdin.write(go)));
    const sampler = new WindowSampler(opts.seconds, opts.serverPid);
    const timeout = (WARMUP_SECONDS + opts.seconds) * 1000 + RUN_GRACE_MS + 5_000;
    const results = await Promise.all(
      children.map(async (c) => JSON.parse(await readLine(c, timeout)) as LoadResult),
    );
    return sampler.done(merge(results));
  } finally {
    for (const c of children) {
      try {
        c.proc.kill("SIGKILL");
      } catch {
        // already exited
      }
      await c.proc.status;
    }
  }
}

/** Run one load: in this process, or split over child processes. */
export async function load(opts: LoadOptions): Promise<LoadResult> {
  if (opts.procs > 1) return await runChildren(opts);
  const run = await Run.open(opts);
  const sampler = new WindowSampler(opts.seconds, opts.serverPid);
  await run.start();
  return sampler.done(run.result());
}

/** The child side of {@linkcode runChildren}: connect, say ready, wait for "go", run, print. */
async function child(opts: LoadOptions): Promise<void> {
  let run: Run;
  try {
    run = await Run.open(opts);
  } catch (err) {
    console.log(`error ${err instanceof Error ? err.message : err}`);
    return;
  }
  console.log("ready");
  const reader = lines(Deno.stdin.readable).getReader();
  const { value } = await reader.read();
  if (value !== "go") return;
  await run.start();
  console.log(JSON.stringify(run.result()));
  reader.releaseLock();
  Deno.exit(0);
}

/** Put each key once, `clients` at a time; rejects on the first error. */
async function putAll(endpoint: string, clients: number): Promise<void> {
  const [client] = await connect(endpoint, 1, PROBE_TIMEOUT_MS);
  const requests = putRequests();
  let next = 0;
  const worker = async () => {
    while (next < requests.length) {
      const request = requests[next++];
      await new Promise<void>((resolve, reject) => {
        client.makeUnaryRequest<Buffer, Answer>(
          PUT_METHOD,
          passThrough,
          decodeAnswer,
          request,
          { deadline: Date.now() + PROBE_TIMEOUT_MS },
          (err, answer) => {
            const why = err ? statusText(err) : invalid("put", answer!);
            if (why) reject(new Error(`Put failed: ${why}`));
            else resolve();
          },
        );
      });
    }
  };
  try {
    await Promise.all(Array.from({ length: clients }, worker));
  } finally {
    client.close();
  }
}

/** Why `endpoint` does not answer a gRPC Range, or undefined when it does. */
async function probe(endpoint: string): Promise<string | undefined> {
  let client: grpc.Client;
  try {
    [client] = await connect(endpoint, 1, PROBE_TIMEOUT_MS);
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
  try {
    return await new Promise<string | undefined>((resolve) => {
      client.makeUnaryRequest<Buffer, Answer>(
        RANGE_METHOD,
        passThrough,
        decodeAnswer,
        rangeRequests()[0],
        { deadline: Date.now() + PROBE_TIMEOUT_MS },
        (err, answer) =>
          resolve(
            err ? statusText(err) : answer!.revision > 0 ? undefined : "no header",
          ),
      );
    });
  } finally {
    client.close();
  }
}

// ---------------------------------------------------------------------------
// Report

function rate(r: LoadResult): number {
  return r.calls / r.seconds;
}

/** Server CPU per answered call, in µs; NaN when unknown. */
function serverUsPerCall(r: LoadResult): number {
  return r.serverCpu === undefined ? NaN : r.serverCpu / r.calls * 1e6;
}

/** CPU of the rest of the machine during `r`, % of one core; NaN when unknown. */
function otherPercent(r: LoadResult | string): number {
  if (typeof r === "string") return NaN;
  const other = (r.machineCpu ?? NaN) - r.clientCpu - (r.serverCpu ?? NaN) + (r.stealCpu ?? 0);
  return 100 * Math.max(0, other) / r.seconds;
}

/** A run's figures as table cells. */
interface Cells {
  /** Requests per second, or why there are none. */
  rps: string;
  /** "p50 / p99" in ms. */
  lat: string;
  /** "client / server" CPU, % of one core. */
  cpu: string;
  /** Server CPU per call, µs. */
  serverUs: string;
  /** CPU of everything else on the machine (other processes, stolen), % of one core. */
  other: string;
}

/** `r` as table cells, or the reason it has none. */
function describe(r: LoadResult | string): Cells {
  const none = { lat: "", cpu: "", serverUs: "", other: "" };
  if (typeof r === "string") return { rps: r, ...none };
  if (r.errors > 0) return { rps: `failed (${r.errors} errors)`, ...none };
  const ms = (x: number) => x < 10 ? x.toFixed(2) : x.toFixed(1);
  const pct = (s: number | undefined) =>
    s === undefined || !Number.isFinite(s) ? "?" : `${Math.round(100 * s / r.seconds)}`;
  const other = otherPercent(r);
  const us = serverUsPerCall(r);
  return {
    rps: Math.round(rate(r)).toLocaleString("en-US"),
    lat: `${ms(quantileMs(r.hist, 0.5))} / ${ms(quantileMs(r.hist, 0.99))}`,
    cpu: `${pct(r.clientCpu)} / ${pct(r.serverCpu)}`,
    serverUs: Number.isFinite(us) ? us.toFixed(0) : "?",
    other: Number.isFinite(other) ? `${Math.round(other)}` : "?",
  };
}

function printRun(label: string, r: LoadResult): void {
  if (r.errors > 0) {
    console.log(`${label}: failed, ${r.errors} errors: ${r.errorSamples.join("; ")}`);
    return;
  }
  const d = describe(r);
  console.log(
    `${label}: ${d.rps} req/s, p50/p99 ${d.lat} ms; CPU, % of a core: client ${
      d.cpu.replace(" / ", ", server ")
    }, rest of the machine ${d.other}; server ${d.serverUs} µs/call`,
  );
}

// ---------------------------------------------------------------------------
// Compare mode

/** A server started by {@linkcode startServer}. */
interface Server {
  /** host:port of its client port. */
  endpoint: string;
  pid: number;
  /** SIGTERM, then SIGKILL after {@linkcode EXIT_TIMEOUT_MS}; resolves when it has exited. */
  stop(): Promise<void>;
}

/** Servers running now, stopped on SIGINT/SIGTERM of this process. */
const running = new Set<Server>();

/** The last lines of `file`, for an error message. */
function tail(file: string, lines = 20): string {
  try {
    return Deno.readTextFileSync(file).trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/**
 * Start `kind` as a single member with its default flags, its data dir in
 * `dir` and free client and peer ports on 127.0.0.1; resolves once /health
 * answers.
 */
async function startServer(kind: "etcd" | "cairn", dir: string): Promise<Server> {
  const [client, peer] = allocatePorts(2);
  const clientUrl = `http://127.0.0.1:${client}`;
  const peerUrl = `http://127.0.0.1:${peer}`;
  const flags = [
    "--data-dir",
    `${dir}/${kind}`,
    "--listen-client-urls",
    clientUrl,
    "--advertise-client-urls",
    clientUrl,
    "--listen-peer-urls",
    peerUrl,
    "--initial-advertise-peer-urls",
    peerUrl,
    "--initial-cluster",
    `default=${peerUrl}`,
  ];
  const root = new URL("..", import.meta.url).pathname;
  const [cmd, args] = kind === "etcd"
    ? ["etcd", flags]
    : [Deno.execPath(), ["run", "-A", `${root}main.ts`, ...flags]];
  const logFile = `${dir}/${kind}.log`;
  // The shell only redirects the output to the log, then becomes the server
  // (exec), so the pid, whose CPU is measured, is the server's.
  const proc = new Deno.Command("sh", {
    args: ["-c", 'exec "$0" "$@" >>"$SERVER_LOG" 2>&1', cmd, ...args],
    env: { SERVER_LOG: logFile },
    cwd: root,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  let exited = false;
  const status = proc.status.finally(() => exited = true);
  const server: Server = {
    endpoint: `127.0.0.1:${client}`,
    pid: proc.pid,
    stop: async () => {
      if (!exited) proc.kill("SIGTERM");
      const timer = setTimeout(() => exited || proc.kill("SIGKILL"), EXIT_TIMEOUT_MS);
      await status;
      clearTimeout(timer);
      running.delete(server);
    },
  };
  running.add(server);
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!exited && Date.now() < deadline) {
    try {
      const res = await fetch(`${clientUrl}/health`);
      await res.body?.cancel();
      if (res.ok) return server;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  await server.stop();
  throw new Error(
    `${kind} did not become healthy in ${START_TIMEOUT_MS} ms; its log:\n${tail(logFile)}`,
  );
}

/** The runs of the sequence, in order. */
const SEQUENCE: { label: string; op: Op; clients: number }[] = [
  { label: "put, 256 B value, 1000 keys, 64 in flight", op: "put", clients: 64 },
  { label: "put, 256 B value, 1000 keys, 1 in flight", op: "put", clients: 1 },
  { label: "single-key range (linearizable), 64 in flight", op: "range", clients: 64 },
];

/** Settings of a sequence. */
interface SequenceOptions {
  seconds: number;
  channels: number;
  procs: number;
}

/** The sequence's results on a fresh `kind`, or for each run why it has none. */
async function sequence(
  kind: "etcd" | "cairn",
  dir: string,
  opts: SequenceOptions,
): Promise<(LoadResult | string)[]> {
  console.log(`starting ${kind}`);
  let server: Server;
  try {
    server = await startServer(kind, dir);
  } catch (err) {
    console.log(`${kind}: ${err instanceof Error ? err.message : err}`);
    return SEQUENCE.map(() => "did not start");
  }
  try {
    const why = await probe(server.endpoint);
    if (why) {
      console.log(`${kind}: no gRPC (${why})`);
      return SEQUENCE.map(() => "no gRPC");
    }
    await putAll(server.endpoint, 64);
    const results: LoadResult[] = [];
    for (const s of SEQUENCE) {
      const r = await load({
        endpoint: server.endpoint,
        op: s.op,
        clients: s.clients,
        channels: Math.min(opts.channels, s.clients),
        seconds: opts.seconds,
        procs: Math.min(opts.procs, s.clients),
        serverPid: server.pid,
      });
      printRun(`${kind} ${s.label}`, r);
      results.push(r);
    }
    return results;
  } finally {
    await server.stop();
  }
}

function ratio(a: LoadResult | string, b: LoadResult | string, of: (r: LoadResult) => number) {
  if (typeof a === "string" || typeof b === "string" || a.errors > 0 || b.errors > 0) return "—";
  const x = of(a) / of(b);
  return Number.isFinite(x) ? x.toFixed(2) : "—";
}

async function etcdVersion(): Promise<string> {
  try {
    const out = await new Deno.Command("etcd", { args: ["--version"], stdout: "piped" }).output();
    return /etcd Version: (\S+)/.exec(new TextDecoder().decode(out.stdout))?.[1] ?? "3.4";
  } catch {
    return "3.4";
  }
}

/** The two tables of a comparison, in Markdown. */
function tables(
  etcd: (LoadResult | string)[],
  cairn: (LoadResult | string)[],
  version: string,
  opts: SequenceOptions,
): string {
  const how = `${opts.seconds} s, ${opts.channels} channels, ${opts.procs} client process${
    opts.procs > 1 ? "es" : ""
  }`;
  const e = etcd.map(describe);
  const c = cairn.map(describe);
  return [
    `| gRPC workload (${how}) | etcd ${version} req/s | p50 / p99 ms | cairn req/s | p50 / p99 ms | cairn / etcd |`,
    "|---|---|---|---|---|---|",
    ...SEQUENCE.map((s, i) =>
      `| ${s.label} | ${e[i].rps} | ${e[i].lat} | ${c[i].rps} | ${c[i].lat} | ${
        ratio(cairn[i], etcd[i], rate)
      } |`
    ),
    "",
    `| CPU during each run | etcd: client / server, % of a core | server µs per call | cairn: client / server | server µs per call | cairn / etcd, µs per call | rest of the machine, % (etcd / cairn run) |`,
    "|---|---|---|---|---|---|---|",
    ...SEQUENCE.map((s, i) =>
      `| ${s.label} | ${e[i].cpu} | ${e[i].serverUs} | ${c[i].cpu} | ${c[i].serverUs} | ${
        ratio(cairn[i], etcd[i], serverUsPerCall)
      } | ${e[i].other || "—"} / ${c[i].other || "—"} |`
    ),
  ].join("\n");
}

/** `--compare`: etcd, then cairn, the same sequence; the tables; 1 if a run had errors. */
async function compare(opts: SequenceOptions & { readme: boolean }): Promise<number> {
  const dir = await Deno.makeTempDir({ prefix: "cairn-grpc-bench-" });
  const onSignal = async () => {
    await Promise.all([...running].map((s) => s.stop()));
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    const etcd = await sequence("etcd", dir, opts);
    const cairn = await sequence("cairn", dir, opts);
    const table = tables(etcd, cairn, await etcdVersion(), opts);
    const busiest = Math.max(0, ...[...etcd, ...cairn].map(otherPercent).filter(Number.isFinite));
    const busy = busiest > BUSY_MACHINE_PERCENT
      ? `\n\nThe machine was busy with other work during this measurement (up to ${
        Math.round(busiest)
      } % of a core beside client and server): its figures are low.`
      : "";
    console.log(table + busy);
    if (opts.readme) {
      const date = new Date().toISOString().slice(0, 10);
      const cmd =
        `deno run -A bench/grpc.ts --compare --seconds ${opts.seconds} --channels ${opts.channels} --procs ${opts.procs}`;
      await rewriteReadmeSection(
        "grpc.ts",
        `Measured ${date} by \`${cmd}\` on this machine (2 cores):\n\n${table}${busy}`,
      );
    }
    const failed = [...etcd, ...cairn].some((r) => typeof r !== "string" && r.errors > 0);
    return failed ? 1 : 0;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    await Deno.remove(dir, { recursive: true });
  }
}

// ---------------------------------------------------------------------------
// Command line

const USAGE = `usage:
  deno run -A bench/grpc.ts --endpoint HOST:PORT --op put|range [--clients 64] [--seconds 10]
      [--channels 8] [--procs 2] [--server-pid PID]
  deno run -A bench/grpc.ts --compare [--seconds 10] [--channels 8] [--procs 2] [--no-readme]`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      endpoint: { type: "string" },
      op: { type: "string", default: "put" },
      clients: { type: "string", default: "64" },
      seconds: { type: "string", default: "10" },
      channels: { type: "string", default: String(DEFAULT_CHANNELS) },
      procs: { type: "string", default: String(DEFAULT_PROCS) },
      "server-pid": { type: "string" },
      compare: { type: "boolean", default: false },
      "no-readme": { type: "boolean", default: false },
      child: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const int = (s: string, name: string) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
    return n;
  };
  const seconds = int(values.seconds, "seconds");
  const channels = int(values.channels, "channels");
  const procs = int(values.procs, "procs");
  if (values.compare) {
    return await compare({ seconds, channels, procs, readme: !values["no-readme"] });
  }
  const op = values.op as Op;
  if (!values.endpoint || (op !== "put" && op !== "range")) {
    console.error(USAGE);
    return 2;
  }
  const clients = int(values.clients, "clients");
  const opts: LoadOptions = {
    endpoint: values.endpoint,
    op,
    clients,
    channels: Math.min(channels, clients),
    seconds,
    procs: Math.min(procs, clients),
    serverPid: values["server-pid"] ? int(values["server-pid"], "server-pid") : undefined,
  };
  if (values.child) {
    await child(opts);
    return 0;
  }
  const why = await probe(opts.endpoint);
  if (why) {
    console.error(`${opts.endpoint}: no gRPC (${why})`);
    return 1;
  }
  // A range is checked to find its key: write the keys first.
  if (op === "range") await putAll(opts.endpoint, 64);
  const r = await load(opts);
  printRun(
    `${op}, ${clients} in flight, ${opts.channels} channels, ${opts.procs} process${
      opts.procs > 1 ? "es" : ""
    }`,
    r,
  );
  return r.errors > 0 ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main());
