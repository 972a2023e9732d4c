/**
 * Differential-test harness: starts a real etcd 3.4 and a cairn server
 * (`main.ts` with etcd's flags), each from an empty data dir on loopback
 * ports, sends both the same HTTP requests and records every difference in
 * status, the headers clients look at ({@linkcode COMPARED_HEADERS}) or body. Bodies are compared as raw text after
 * masking the values of `cluster_id`, `member_id` and `raft_term` (which
 * legitimately differ), so field order, omitted zero values and number
 * formatting must match byte for byte.
 *
 * @module
 */

import {
  HAVE_ETCD,
  type ServerProcess,
  startCairn as startCairnProcess,
  startEtcd as startEtcdProcess,
} from "../servers.ts";

export { HAVE_ETCD };

/**
 * The test name to register: the plain name, or the name with a note that
 * it is skipped because there is no etcd binary (use with `ignore`).
 */
export function compatName(name: string): string {
  return HAVE_ETCD ? name : `${name} (skipped: no etcd binary on PATH)`;
}

/** A server under test. */
export interface Server {
  /** e.g. `http://127.0.0.1:23790`. */
  url: string;
  /** Kill the process and wait for it. */
  stop(): Promise<void>;
}

function asServer(p: ServerProcess): Server {
  return { url: p.url, stop: () => p.kill() };
}

/** Start etcd 3.4 as a one-member cluster in `dir`, with `flags`. */
export async function startEtcd(dir: string, flags: string[] = []): Promise<Server> {
  return asServer(await startEtcdProcess(dir, flags));
}

/** Start cairn (`main.ts`) in `dir` with etcd's flags, and `flags`. */
export async function startCairn(dir: string, flags: string[] = []): Promise<Server> {
  return asServer(await startCairnProcess(dir, flags));
}

/**
 * Response headers compared between etcd and cairn (others, such as Date,
 * Content-Length or Transfer-Encoding, may legitimately differ).
 */
export const COMPARED_HEADERS = [
  "content-type",
  "access-control-allow-headers",
  "access-control-allow-methods",
  "access-control-allow-origin",
  "allow",
  "grpc-metadata-content-type",
  "x-content-type-options",
] as const;

/** One HTTP exchange as compared. */
export interface Exchange {
  status: number;
  /** The {@linkcode COMPARED_HEADERS} present, as `name: value` lines. */
  headers: string;
  contentType: string | null;
  /** Body with cluster_id/member_id/raft_term values masked. */
  body: string;
}

/** Masks the values that legitimately differ between two clusters. */
export function mask(body: string): string {
  return body.replace(/"(cluster_id|member_id|raft_term)":"\d+"/g, '"$1":"*"');
}

async function exchange(
  url: string,
  method: string,
  path: string,
  body?: string,
): Promise<Exchange> {
  try {
    const res = await fetch(url + path, { method, body });
    const headers = COMPARED_HEADERS.filter((h) => res.headers.has(h))
      .map((h) => `${h}: ${res.headers.get(h)}`).join("\n");
    return {
      status: res.status,
      headers,
      contentType: res.headers.get("content-type"),
      body: mask(await res.text()),
    };
  } catch (err) {
    // A dropped connection (a crashed server) is recorded, not thrown, so
    // it shows up as a difference.
    return { status: 0, headers: "", contentType: null, body: `connection failed: ${err}` };
  }
}

/** The two servers and the differences found so far. */
export class Pair {
  readonly etcd: Server;
  readonly cairn: Server;
  /** Every difference, with the request that showed it. */
  readonly diffs: string[] = [];
  /** Number of exchanges compared. */
  compared = 0;

  constructor(etcd: Server, cairn: Server) {
    this.etcd = etcd;
    this.cairn = cairn;
  }

  /**
   * POST `body` (an object is JSON-encoded; a string is sent as is) to
   * `path` on both servers; records a difference if status, compared headers
   * or masked body differ. Returns etcd's exchange.
   */
  async post(path: string, body: unknown): Promise<Exchange> {
    const text = typeof body === "string" ? body : JSON.stringify(body);
    return await this.send("POST", path, text);
  }

  /** Send any method to both servers and compare, as {@linkcode post}. */
  async send(method: string, path: string, text?: string): Promise<Exchange> {
    const [e, c] = await Promise.all([
      exchange(this.etcd.url, method, path, text),
      exchange(this.cairn.url, method, path, text),
    ]);
    this.compared++;
    const shown = text === undefined ? "" : text.length > 200 ? text.slice(0, 200) + "…" : text;
    if (e.status !== c.status || e.headers !== c.headers || e.body !== c.body) {
      const headers = e.headers === c.headers
        ? ""
        : `\n  etcd headers:  ${e.headers.replaceAll("\n", "; ")}` +
          `\n  cairn headers: ${c.headers.replaceAll("\n", "; ")}`;
      this.diffs.push(
        `${method} ${path} ${shown}\n  etcd:  ${e.status} ${e.contentType} ${
          e.body.slice(0, 600)
        }\n  cairn: ${c.status} ${c.contentType} ${c.body.slice(0, 600)}${headers}`,
      );
    }
    return e;
  }

  /** Returns and clears the differences recorded so far. */
  takeDiffs(): string[] {
    return this.diffs.splice(0);
  }
}

/**
 * Runs `fn` with a fresh etcd and a fresh cairn (both from empty data dirs,
 * so revisions match as sequences, both given the server `flags`), and
 * stops both afterwards.
 */
export async function withPair(
  fn: (pair: Pair) => Promise<void>,
  flags: string[] = [],
): Promise<void> {
  const etcdDir = await Deno.makeTempDir({ prefix: "cairn-compat-etcd-" });
  const cairnDir = await Deno.makeTempDir({ prefix: "cairn-compat-cairn-" });
  let etcd: Server | undefined;
  let cairn: Server | undefined;
  try {
    const [e, c] = await Promise.allSettled([
      startEtcd(etcdDir, flags),
      startCairn(cairnDir, flags),
    ]);
    if (e.status === "fulfilled") etcd = e.value;
    if (c.status === "fulfilled") cairn = c.value;
    if (e.status === "rejected") throw e.reason;
    if (c.status === "rejected") throw c.reason;
    await fn(new Pair(etcd!, cairn!));
  } finally {
    await Promise.allSettled([etcd?.stop(), cairn?.stop()]);
    await Deno.remove(etcdDir, { recursive: true }).catch(() => {});
    await Deno.remove(cairnDir, { recursive: true }).catch(() => {});
  }
}

/** Standard base64 of a string (UTF-8) or of raw bytes. */
export function b64(s: string | number[]): string {
  const bytes = typeof s === "string" ? new TextEncoder().encode(s) : new Uint8Array(s);
  return btoa(String.fromCharCode(...bytes));
}

/**
 * A streaming response (watch, keep-alive, observe): its lines, masked as
 * {@linkcode mask} does, read as they come.
 */
export class StreamLines {
  readonly #abort = new AbortController();
  readonly #lines: string[] = [];
  #wake: (() => void) | undefined;
  /** The HTTP status, once `ready`. */
  status = 0;
  /** The response has ended (or could not be made). */
  ended = false;
  /** Resolves once the response has started. */
  readonly ready: Promise<void>;

  /** POST `body` to `url` (the full URL) and read the response as it streams. */
  constructor(url: string, body: string) {
    this.ready = (async () => {
      try {
        const res = await fetch(url, { method: "POST", body, signal: this.#abort.signal });
        this.status = res.status;
        void this.#read(res.body!);
      } catch {
        this.ended = true;
      }
    })();
  }

  async #read(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for await (const chunk of body) {
        buffer += decoder.decode(chunk, { stream: true });
        let nl;
        while ((nl = buffer.indexOf("\n")) >= 0) {
          this.#lines.push(mask(buffer.slice(0, nl)));
          buffer = buffer.slice(nl + 1);
        }
        this.#wake?.();
      }
    } catch {
      // aborted
    }
    if (buffer.length > 0) this.#lines.push(mask(buffer));
    this.ended = true;
    this.#wake?.();
  }

  /** The next `n` lines (fewer if the stream ends or `ms` pass). */
  async take(n: number, ms = 5000): Promise<string[]> {
    await this.ready;
    const deadline = Date.now() + ms;
    while (this.#lines.length < n && !this.ended && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        setTimeout(resolve, 100);
      });
    }
    return this.#lines.splice(0, n);
  }

  /** Lines that arrived beyond what was taken, after a short wait. */
  async extra(): Promise<string[]> {
    await new Promise((r) => setTimeout(r, 300));
    return this.#lines.splice(0);
  }

  /** Stop reading (the client goes away). */
  close(): void {
    this.#abort.abort();
  }
}
