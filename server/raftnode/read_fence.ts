/**
 * The read fence: how a linearizable read on any thread of a member waits
 * for every write acknowledged before it started.
 *
 * The raft node answers a write once its WAL record is durable and it has
 * been applied in memory; the LMDB transaction that makes it visible to
 * readers commits a moment later, in the background. So before reading, a
 * reader loads the *acknowledged* index and, if the *visible* index is
 * still below it, waits until it is not (a local ReadIndex: the read index
 * is the highest index answered to any client). Both indexes live in a
 * SharedArrayBuffer that the main thread writes and every thread reads with
 * `Atomics`, so a read that starts after a client saw its answer (on any
 * thread) always sees the write. A read that has to wait is woken by
 * {@linkcode ReadFence.wake}, which the main thread calls when it publishes
 * and a worker calls when the main thread's applied-change message arrives
 * (`Atomics.waitAsync` would not keep Deno's event loop alive).
 *
 * @module
 */
import { Errors } from "../../core/errors.ts";
import { invariant } from "../../core/invariant.ts";
import { MAX_WAITING_READS } from "../../core/limits.ts";

const ACKNOWLEDGED = 0;
const VISIBLE = 1;
const FAILED = 2;
const CLUSTERED = 3;
const TERM = 4;
const AUTH_CHANGE = 5;

/**
 * Shared state of a fence: six 64-bit slots (acknowledged, visible, failed,
 * clustered, term, and the index of the last batch that changed the auth
 * store).
 */
export type FenceBuffer = SharedArrayBuffer;

/** Create the shared memory of a fence, starting with everything visible up to `index`. */
export function createFenceBuffer(index: number): FenceBuffer {
  const sab = new SharedArrayBuffer(6 * 8);
  const slots = new BigInt64Array(sab);
  slots[ACKNOWLEDGED] = BigInt(index);
  slots[VISIBLE] = BigInt(index);
  return sab;
}

/** One thread's handle on a fence (the main thread writes, every thread waits). */
export class ReadFence {
  readonly #slots: BigInt64Array;
  /** Reads of this thread waiting for an index to become visible. */
  #waiting: Waiting[] = [];

  readonly #onWait: (() => void) | undefined;

  /**
   * A handle on the fence in `buffer` (from {@linkcode createFenceBuffer}).
   * `onWait` is called when a read starts waiting while none of this
   * thread's reads was (so the writes it waits for can be committed now).
   */
  constructor(buffer: FenceBuffer, onWait?: () => void) {
    this.#slots = new BigInt64Array(buffer);
    this.#onWait = onWait;
  }

  /** Record that entries up to `index` are about to be answered (call before answering). */
  acknowledge(index: number): void {
    invariant(
      BigInt(index) >= Atomics.load(this.#slots, ACKNOWLEDGED),
      "the acknowledged index only grows",
    );
    Atomics.store(this.#slots, ACKNOWLEDGED, BigInt(index));
  }

  /** Record that entries up to `index` are visible to readers, and wake this thread's reads. */
  publish(index: number): void {
    if (BigInt(index) > Atomics.load(this.#slots, VISIBLE)) {
      Atomics.store(this.#slots, VISIBLE, BigInt(index));
    }
    this.wake();
  }

  /** Acknowledged writes can no longer become visible (a failed commit): reads fail. */
  fail(): void {
    Atomics.store(this.#slots, FAILED, 1n);
    this.wake();
  }

  /**
   * Whether the member has peers: linearizable reads then need ReadIndex
   * from the leader (set by the main thread as the membership changes).
   */
  get clustered(): boolean {
    return Atomics.load(this.#slots, CLUSTERED) !== 0n;
  }

  /** The member's current Raft term (response headers carry it). */
  get term(): number {
    return Number(Atomics.load(this.#slots, TERM));
  }

  /** Record the current Raft term. */
  setTerm(term: number): void {
    Atomics.store(this.#slots, TERM, BigInt(term));
  }

  /** Record whether the member has peers. */
  setClustered(clustered: boolean): void {
    Atomics.store(this.#slots, CLUSTERED, clustered ? 1n : 0n);
  }

  /**
   * Record that the batch up to `index` changed the auth store (call before
   * answering it, as {@linkcode ReadFence.acknowledge}).
   */
  authChanged(index: number): void {
    Atomics.store(this.#slots, AUTH_CHANGE, BigInt(index));
  }

  /**
   * Wait until the last auth change answered is visible (before judging a
   * request's credentials): undefined when it already is, which is nearly
   * always (unlike {@linkcode ReadFence.wait}, writes that do not touch the
   * auth store are not waited for).
   *
   * @throws {EtcdError} as {@linkcode ReadFence.wait}.
   */
  waitForAuth(): Promise<void> | undefined {
    return this.#waitFor(Atomics.load(this.#slots, AUTH_CHANGE));
  }

  /** Index of the last batch that changed the auth store (0: none since the member started). */
  get authChangeIndex(): number {
    return Number(Atomics.load(this.#slots, AUTH_CHANGE));
  }

  /** Index of the last entry visible to readers. */
  get visibleIndex(): number {
    return Number(Atomics.load(this.#slots, VISIBLE));
  }

  /**
   * Wait until every write acknowledged so far is visible: undefined when it
   * already is (the common case: no promise, no wait).
   *
   * @throws {EtcdError} Stopped (as a rejection) when the member can no
   *   longer make acknowledged writes visible; TooManyRequests when
   *   MAX_WAITING_READS reads of this thread already wait.
   */
  wait(): Promise<void> | undefined {
    return this.#waitFor(Atomics.load(this.#slots, ACKNOWLEDGED));
  }

  /** Index of the last entry acknowledged to a client (or about to be). */
  get acknowledgedIndex(): number {
    return Number(Atomics.load(this.#slots, ACKNOWLEDGED));
  }

  /**
   * Wait until entries up to `index` (a read index) are visible: undefined
   * when they already are.
   *
   * @throws {EtcdError} as {@linkcode ReadFence.wait}.
   */
  waitFor(index: number): Promise<void> | undefined {
    return this.#waitFor(BigInt(index));
  }

  #waitFor(target: bigint): Promise<void> | undefined {
    if (Atomics.load(this.#slots, VISIBLE) >= target) return undefined;
    if (this.#waiting.length >= MAX_WAITING_READS) return Promise.reject(Errors.TooManyRequests());
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#waiting.push({ target, resolve, reject });
    if (this.#waiting.length === 1) this.#onWait?.();
    return promise;
  }

  /** Settle the reads of this thread that the shared state lets go on. */
  wake(): void {
    if (this.#waiting.length === 0) return;
    if (Atomics.load(this.#slots, FAILED) !== 0n) {
      for (const w of this.#waiting.splice(0)) w.reject(Errors.Stopped());
      return;
    }
    const visible = Atomics.load(this.#slots, VISIBLE);
    const still: Waiting[] = [];
    for (const w of this.#waiting) {
      if (w.target <= visible) w.resolve();
      else still.push(w);
    }
    this.#waiting = still;
  }
}

interface Waiting {
  target: bigint;
  resolve: () => void;
  reject: (err: unknown) => void;
}
