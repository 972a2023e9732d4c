/**
 * The client port's `:authority` repair (server/grpc/authority.ts) end to
 * end. In process: a grpc-js server behind `listenClientPort`, called by
 * grpc-js clients and raw-frame clients that send `:authority: http://…`
 * (served through the rewriting wrapper) or `host:port` (handed over as the
 * socket itself): unary, server-streaming and bidi calls, a client that goes
 * away, a server that closes, and the server's SETTINGS that the rewriter's
 * HPACK and frame bounds assume. Against a cairn process: the real etcdctl
 * 3.4 with `--endpoints http://127.0.0.1:PORT` (put, get, watch, endpoint
 * status --cluster, snapshot save) and with `127.0.0.1:PORT`; skipped when
 * etcdctl is absent.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as net from "node:net";
import * as grpc from "@grpc/grpc-js";
// @ts-types="../../server/grpc/hpack.d.ts"
import hpack from "hpack.js";
import { listenClientPort } from "../../server/client_port.ts";
import {
  AuthorityRewritingSocket,
  EMPTY_SETTINGS_FRAME,
  FrameFlag,
  FrameType,
  HPACK_DEFAULT_TABLE_BYTES,
  HTTP2_DEFAULT_MAX_FRAME_SIZE,
  HTTP2_PREFACE,
  serveHttp2Connection,
} from "../../server/grpc/authority.ts";
import { ROOT, runs, startCairn } from "../servers.ts";

const identity = (b: Buffer): Buffer => b;

/** Resolves when `p` does, or rejects after `ms` with `what`. */
function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Waits (at most 1 s) until `conn` rewrote one request's `:authority`. */
function rewrittenOnce(conn: AuthorityRewritingSocket): Promise<void> {
  return within(
    1_000,
    "the request",
    new Promise<void>((resolve) => {
      const poll = () => conn.rewritten === 1 ? resolve() : setTimeout(poll, 10);
      poll();
    }),
  );
}

/** A test service: its calls record what the server saw. */
class TestServer {
  readonly server = new grpc.Server();
  readonly injector: grpc.ConnectionInjector;
  /** Connections handed to grpc-js, in order. */
  readonly injected: unknown[] = [];
  /** Calls of Hold, resolved when the call is cancelled. */
  readonly held: { host: string; cancelled: Promise<void> }[] = [];

  constructor() {
    this.server.register(
      "/test.T/Echo",
      ((call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        cb(
          null,
          Buffer.from(JSON.stringify({ host: call.getHost(), body: call.request.toString() })),
        );
      }) as grpc.UntypedHandleCall,
      identity,
      identity,
      "unary",
    );
    this.server.register(
      "/test.T/Chunks",
      (async (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
        const n = Number(call.request.toString());
        for (let i = 0; i < n; i++) {
          const chunk = Buffer.alloc(64 * 1024, i % 256);
          if (!call.write(chunk)) await new Promise((r) => call.once("drain", r));
        }
        call.end();
      }) as grpc.UntypedHandleCall,
      identity,
      identity,
      "serverStream",
    );
    this.server.register(
      "/test.T/Bidi",
      ((call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
        call.on("data", (b: Buffer) => call.write(Buffer.from(`${call.getHost()} ${b}`)));
        call.on("end", () => call.end());
      }) as grpc.UntypedHandleCall,
      identity,
      identity,
      "bidi",
    );
    this.server.register(
      "/test.T/Hold",
      ((call: grpc.ServerWritableStream<Buffer, Buffer>) => {
        this.held.push({
          host: call.getHost(),
          cancelled: new Promise((resolve) => call.once("cancelled", () => resolve())),
        });
        call.write(Buffer.from("held"));
      }) as grpc.UntypedHandleCall,
      identity,
      identity,
      "serverStream",
    );
    const inner = this.server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    this.injector = {
      injectConnection: (c) => {
        this.injected.push(c);
        inner.injectConnection(c);
      },
      drain: (ms) => inner.drain(ms),
      destroy: () => inner.destroy(),
    };
  }
}

function unary(client: grpc.Client, body: string): Promise<{ host: string; body: string }> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      "/test.T/Echo",
      identity,
      identity,
      Buffer.from(body),
      (err, res) => err ? reject(err) : resolve(JSON.parse(res!.toString())),
    );
  });
}

/** A request's header block (hpack.js), for a client of raw frames. */
function requestBlock(authority: string, path: string): Buffer {
  const out: Uint8Array[] = [];
  const compressor = hpack.compressor.create({ table: { maxSize: 4096 } });
  compressor.push = (chunk: Uint8Array) => out.push(chunk) > 0;
  compressor.write([
    { name: ":method", value: "POST" },
    { name: ":scheme", value: "http" },
    { name: ":path", value: path },
    { name: ":authority", value: authority },
    { name: "content-type", value: "application/grpc" },
    { name: "te", value: "trailers" },
  ]);
  const block = Buffer.concat(out);
  assert(block.length < 256);
  return block;
}

function rawFrame(
  type: number,
  flags: number,
  stream: number,
  payload: Uint8Array = new Uint8Array(),
): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(stream, 5);
  return Buffer.concat([header, payload]);
}

interface RawFrame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
}

/**
 * An HTTP/2 client of raw frames (Deno's `node:http2` client can crash its
 * process when a server closes under it): the preface, SETTINGS, the ACK of
 * cairn's SETTINGS, then one request on stream 1; it acknowledges the
 * server's own SETTINGS and keeps every frame it gets.
 */
function rawClient(port: number, authority: string, path: string) {
  const socket = net.connect(port, "127.0.0.1");
  socket.on("error", () => {});
  const frames: RawFrame[] = [];
  const waiters: (() => void)[] = [];
  let buf = Buffer.alloc(0);
  let settings = 0;
  socket.on("data", (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 9 && buf.length >= 9 + buf.readUIntBE(0, 3)) {
      const length = buf.readUIntBE(0, 3);
      const f = {
        type: buf[3],
        flags: buf[4],
        stream: buf.readUInt32BE(5),
        payload: buf.subarray(9, 9 + length),
      };
      frames.push(f);
      buf = buf.subarray(9 + length);
      if (f.type === FrameType.SETTINGS && (f.flags & FrameFlag.ACK) === 0 && settings++ > 0) {
        socket.write(rawFrame(FrameType.SETTINGS, FrameFlag.ACK, 0));
      }
    }
    for (const w of waiters.splice(0)) w();
  });
  socket.write(Buffer.concat([
    HTTP2_PREFACE,
    rawFrame(FrameType.SETTINGS, 0, 0),
    rawFrame(FrameType.SETTINGS, FrameFlag.ACK, 0),
    rawFrame(FrameType.HEADERS, FrameFlag.END_HEADERS, 1, requestBlock(authority, path)),
    rawFrame(FrameType.DATA, FrameFlag.END_STREAM, 1, Buffer.alloc(5)),
  ]));
  /** Resolves once a frame that `pred` accepts has come. */
  const frame = (pred: (f: RawFrame) => boolean) =>
    new Promise<void>((resolve) => {
      const check = () => frames.some(pred) ? resolve() : waiters.push(check);
      check();
    });
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  return { socket, frames, frame, closed };
}

/** A call of Hold by a raw client, once the server has sent its first message. */
async function holdOver(port: number, authority: string, server: TestServer) {
  const before = server.held.length;
  const client = rawClient(port, authority, "/test.T/Hold");
  await within(
    5_000,
    "the server's first message",
    client.frame((f) => f.type === FrameType.DATA && f.stream === 1 && f.payload.length > 5),
  );
  assertEquals(server.held.length, before + 1);
  return { ...client, call: server.held[before] };
}

Deno.test({
  name: "gRPC :authority: endpoint URLs are rewritten, host:port passes, under grpc-js in process",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const srv = new TestServer();
    const port = await listenClientPort({ hostname: "127.0.0.1", port: 0, grpc: srv.injector });
    const host = `127.0.0.1:${port.port}`;
    const urlClient = new grpc.Client(host, grpc.credentials.createInsecure(), {
      "grpc.default_authority": `http://${host}`,
    });
    const plainClient = new grpc.Client(host, grpc.credentials.createInsecure());
    try {
      await t.step(
        "unary: the server sees host:port; the URL's connection is wrapped",
        async () => {
          assertEquals(await within(5_000, "unary", unary(urlClient, "one")), {
            host,
            body: "one",
          });
          assertEquals(srv.injected.length, 1);
          const wrapped = srv.injected[0];
          assert(wrapped instanceof AuthorityRewritingSocket, "an AuthorityRewritingSocket");
          assert(wrapped.rewritten >= 1);
          assertEquals(wrapped.remoteAddress, "127.0.0.1");
          // More calls on the same connection (HPACK's dynamic table in use).
          for (let i = 0; i < 20; i++) {
            assertEquals(await unary(urlClient, `n${i}`), { host, body: `n${i}` });
          }
          assert(wrapped.rewritten >= 21);
          assertEquals(srv.injected.length, 1, "one connection");
        },
      );

      await t.step("fast path: host:port gets the socket itself", async () => {
        assertEquals(await within(5_000, "unary", unary(plainClient, "two")), {
          host,
          body: "two",
        });
        assertEquals(srv.injected.length, 2);
        assert(srv.injected[1] instanceof net.Socket, "the socket itself");
        assert(!(srv.injected[1] instanceof AuthorityRewritingSocket));
      });

      await t.step("server stream: 200 messages of 64 KiB through the wrapper", async () => {
        const call = urlClient.makeServerStreamRequest(
          "/test.T/Chunks",
          identity,
          identity,
          Buffer.from("200"),
        );
        let n = 0;
        let bytes = 0;
        let ok = true;
        await within(
          20_000,
          "the stream's end",
          new Promise<void>((resolve, reject) => {
            call.on("data", (b: Buffer) => {
              if (b.length !== 64 * 1024 || b[0] !== n % 256) ok = false;
              n++;
              bytes += b.length;
            });
            call.on("error", reject);
            call.on("end", () => resolve());
          }),
        );
        assertEquals([n, bytes, ok], [200, 200 * 64 * 1024, true]);
      });

      await t.step("bidi: every message echoed, then the end", async () => {
        const call = urlClient.makeBidiStreamRequest("/test.T/Bidi", identity, identity);
        const got: string[] = [];
        const ended = new Promise<void>((resolve, reject) => {
          call.on("data", (b: Buffer) => got.push(b.toString()));
          call.on("error", reject);
          call.on("end", () => resolve());
        });
        for (let i = 0; i < 100; i++) call.write(Buffer.from(`m${i}`));
        call.end();
        await within(10_000, "the bidi stream's end", ended);
        assertEquals(got, Array.from({ length: 100 }, (_, i) => `${host} m${i}`));
      });

      await t.step(
        "a client that goes away: its call is cancelled, the wrapper closed",
        async () => {
          const before = srv.injected.length;
          const client = await holdOver(port.port, `http://${host}/x`, srv);
          assertEquals(client.call.host, host);
          const wrapped = srv.injected[before];
          assert(wrapped instanceof AuthorityRewritingSocket);
          client.socket.destroy();
          await client.closed;
          await within(5_000, "the server call's cancellation", client.call.cancelled);
          await within(
            5_000,
            "the wrapper's close",
            new Promise<void>((resolve) => {
              if (wrapped.destroyed) resolve();
              else wrapped.once("close", () => resolve());
            }),
          );
        },
      );

      await t.step(
        "the server's SETTINGS leave HPACK's table and the frame size at their defaults",
        async () => {
          const client = rawClient(port.port, host, "/test.T/Echo");
          const settings = () =>
            client.frames.filter((f) =>
              f.type === FrameType.SETTINGS && (f.flags & FrameFlag.ACK) === 0
            );
          await within(5_000, "two SETTINGS frames", client.frame(() => settings().length >= 2));
          client.socket.destroy();
          const [ours, server] = settings();
          assertEquals(ours.payload.length, 0, "cairn's SETTINGS change nothing");
          for (let off = 0; off + 6 <= server.payload.length; off += 6) {
            const id = server.payload.readUInt16BE(off);
            const value = server.payload.readUInt32BE(off + 2);
            if (id === 0x1) {
              assert(value <= HPACK_DEFAULT_TABLE_BYTES, `HEADER_TABLE_SIZE ${value}`);
            }
            if (id === 0x5) {
              assertEquals(value, HTTP2_DEFAULT_MAX_FRAME_SIZE, "MAX_FRAME_SIZE");
            }
          }
        },
      );
    } finally {
      urlClient.close();
      plainClient.close();
      srv.server.forceShutdown();
      await port.close();
    }
  },
});

Deno.test({
  name: "gRPC :authority: a server that closes ends the client's connection, wrapped or not",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const srv = new TestServer();
    const port = await listenClientPort({ hostname: "127.0.0.1", port: 0, grpc: srv.injector });
    const host = `127.0.0.1:${port.port}`;
    try {
      const wrapped = await holdOver(port.port, `http://${host}`, srv);
      const plain = await holdOver(port.port, host, srv);
      assert(srv.injected[0] instanceof AuthorityRewritingSocket);
      assert(!(srv.injected[1] instanceof AuthorityRewritingSocket));
      srv.server.forceShutdown();
      for (const [what, c] of [["wrapped", wrapped], ["plain", plain]] as const) {
        await within(5_000, `the ${what} client socket's close`, c.closed);
        await within(5_000, `the ${what} server call's cancellation`, c.call.cancelled);
        assert(c.frames.some((f) => f.type === FrameType.GOAWAY), `${what}: a GOAWAY first`);
      }
    } finally {
      srv.server.forceShutdown();
      await port.close();
    }
  },
});

/**
 * A listener that serves each connection with `serveHttp2Connection` as the
 * client port does (the first chunk read, the socket paused), recording
 * what it injects.
 */
async function peekServer(options: { timeoutMs?: number; peekBytes?: number }) {
  const injected: (net.Socket | AuthorityRewritingSocket)[] = [];
  const waiters: (() => void)[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    socket.once("data", (head: Buffer) => {
      socket.pause();
      serveHttp2Connection(socket, head, {
        ...options,
        inject: (c) => {
          injected.push(c);
          for (const w of waiters.splice(0)) w();
        },
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    injected,
    /** The next connection handed over. */
    next: (n: number) =>
      within(
        3_000,
        `connection ${n} handed over`,
        new Promise<net.Socket | AuthorityRewritingSocket>((resolve) => {
          const check = () => injected.length >= n ? resolve(injected[n - 1]) : waiters.push(check);
          check();
        }),
      ),
    /** Bytes that the handed-over connection yields, until `length` have come. */
    read: (c: net.Socket | AuthorityRewritingSocket, length: number) =>
      within(
        3_000,
        `${length} bytes`,
        new Promise<Buffer>((resolve) => {
          let got = Buffer.alloc(0);
          c.on("data", (chunk: Buffer) => {
            got = Buffer.concat([got, chunk]);
            if (got.length >= length) resolve(got);
          });
        }),
      ),
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A client socket that keeps what it receives. */
async function connect(port: number) {
  const socket = net.connect(port, "127.0.0.1");
  socket.on("error", () => {});
  let received = Buffer.alloc(0);
  socket.on("data", (chunk: Buffer) => received = Buffer.concat([received, chunk]));
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  await new Promise((resolve) => socket.once("connect", resolve));
  return { socket, closed, received: () => received };
}

Deno.test({
  name: "gRPC :authority: the first-request peek routes by :authority, bytes and time",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const srv = await peekServer({ timeoutMs: 300, peekBytes: 200 });
    const settingsAck = rawFrame(FrameType.SETTINGS, FrameFlag.ACK, 0);
    const hello = Buffer.concat([HTTP2_PREFACE, rawFrame(FrameType.SETTINGS, 0, 0)]);
    const request = (authority: string) =>
      Buffer.concat([
        rawFrame(FrameType.HEADERS, FrameFlag.END_HEADERS, 1, requestBlock(authority, "/a")),
        rawFrame(FrameType.DATA, FrameFlag.END_STREAM, 1, Buffer.alloc(5)),
      ]);
    let n = 0;
    try {
      await t.step(
        "host:port: the socket itself, its bytes less the ACK of cairn's SETTINGS",
        async () => {
          const c = await connect(srv.port);
          // In pieces, the ACK last: the peek waits for it.
          c.socket.write(hello.subarray(0, 3));
          await new Promise((r) => setTimeout(r, 20));
          c.socket.write(Buffer.concat([hello.subarray(3), request("h:1")]));
          await new Promise((r) => setTimeout(r, 50));
          assertEquals(srv.injected.length, n, "not before the ACK");
          assertEquals(c.received(), Buffer.from(EMPTY_SETTINGS_FRAME), "cairn's SETTINGS");
          c.socket.write(settingsAck);
          const conn = await srv.next(++n);
          assert(conn instanceof net.Socket && !(conn instanceof AuthorityRewritingSocket));
          const want = Buffer.concat([hello, request("h:1")]);
          assertEquals(await srv.read(conn, want.length), want);
          c.socket.destroy();
        },
      );

      await t.step("a URL: the rewriter, before the ACK", async () => {
        const c = await connect(srv.port);
        c.socket.write(Buffer.concat([hello, request("http://h:1")]));
        const conn = await srv.next(++n);
        assert(conn instanceof AuthorityRewritingSocket);
        assertEquals(conn.rewritten, 1);
        c.socket.destroy();
      });

      await t.step(
        "ACK and no request: the rewriter, without waiting for the timeout",
        async () => {
          const c = await connect(srv.port);
          const started = Date.now();
          c.socket.write(Buffer.concat([hello, settingsAck]));
          const conn = await srv.next(++n);
          assert(Date.now() - started < 250, "before the timeout");
          assert(conn instanceof AuthorityRewritingSocket);
          c.socket.write(request("http://h:1"));
          await srv.read(conn, hello.length);
          await rewrittenOnce(conn);
          c.socket.destroy();
        },
      );

      await t.step("no request within the time: the rewriter", async () => {
        const c = await connect(srv.port);
        const started = Date.now();
        c.socket.write(hello);
        const conn = await srv.next(++n);
        assert(Date.now() - started >= 250, "after the timeout");
        assert(conn instanceof AuthorityRewritingSocket);
        // It still rewrites what comes later, the first ACK removed.
        c.socket.write(Buffer.concat([settingsAck, request("http://h:1")]));
        await srv.read(conn, hello.length);
        await rewrittenOnce(conn);
        c.socket.destroy();
      });

      await t.step("no request within the bytes: the rewriter", async () => {
        const c = await connect(srv.port);
        const pings = Array.from(
          { length: 20 },
          () => rawFrame(FrameType.PING, 0, 0, Buffer.alloc(8)),
        );
        c.socket.write(Buffer.concat([hello, ...pings]));
        const conn = await srv.next(++n);
        assert(conn instanceof AuthorityRewritingSocket);
        const want = Buffer.concat([hello, ...pings]);
        assertEquals(await srv.read(conn, want.length), want);
        c.socket.destroy();
      });

      await t.step(
        "not HTTP/2's preface after all: the socket, bytes unchanged, no SETTINGS sent",
        async () => {
          const c = await connect(srv.port);
          const bytes = Buffer.from("PRI * HTTP/1.1\r\n\r\nxyzxyz");
          c.socket.write(bytes);
          const conn = await srv.next(++n);
          assert(!(conn instanceof AuthorityRewritingSocket));
          assertEquals(await srv.read(conn, bytes.length), bytes);
          assertEquals(c.received().length, 0);
          c.socket.destroy();
        },
      );

      await t.step("malformed first frames, or silence inside the preface: closed", async () => {
        const bad = await connect(srv.port);
        bad.socket.write(
          Buffer.concat([
            hello,
            rawFrame(FrameType.CONTINUATION, FrameFlag.END_HEADERS, 1, Buffer.alloc(3)),
          ]),
        );
        await within(2_000, "the malformed connection's close", bad.closed);
        const silent = await connect(srv.port);
        silent.socket.write(HTTP2_PREFACE.subarray(0, 10));
        await within(2_000, "the silent connection's close", silent.closed);
        assertEquals(srv.injected.length, n, "neither handed over");
      });
    } finally {
      await srv.close();
    }
  },
});

// --- etcdctl 3.4 against cairn ----------------------------------------

const HAVE_ETCDCTL = await runs("etcdctl", ["version"]);

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs etcdctl, killed after `ms` at most. */
async function etcdctl(args: string[], ms = 15_000): Promise<Ran> {
  const out = await new Deno.Command("etcdctl", {
    args: ["--command-timeout", "5s", ...args],
    cwd: ROOT,
    env: { ETCDCTL_API: "3" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(ms),
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function ok(args: string[]): Promise<string> {
  const r = await etcdctl(args);
  assertEquals(r.code, 0, `etcdctl ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

Deno.test({
  name: "gRPC :authority: etcdctl 3.4 with --endpoints http://… works against cairn",
  ignore: !HAVE_ETCDCTL,
  async fn(t) {
    const dir = Deno.makeTempDirSync({ prefix: "grpc-authority-" });
    const cairn = await startCairn(`${dir}/data`);
    const url = cairn.url; // http://127.0.0.1:PORT
    const ep = ["--endpoints", url];
    try {
      await t.step("put and get", async () => {
        assertEquals(await ok([...ep, "put", "foo", "bar"]), "OK\n");
        assertEquals(await ok([...ep, "get", "foo"]), "foo\nbar\n");
      });

      await t.step("watch: a stream that sees a later put", async () => {
        const watcher = new Deno.Command("etcdctl", {
          args: [...ep, "watch", "foo"],
          env: { ETCDCTL_API: "3" },
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
          signal: AbortSignal.timeout(15_000),
        }).spawn();
        const reader = watcher.stdout.pipeThrough(new TextDecoderStream()).getReader();
        let seen = "";
        try {
          // The watch is registered once a put shows up; put until one does.
          const deadline = Date.now() + 10_000;
          let i = 0;
          const read = (async () => {
            for (;;) {
              const { value, done } = await reader.read();
              if (done) return;
              seen += value;
              if (seen.includes("PUT\nfoo\nwatched")) return;
            }
          })();
          while (!seen.includes("PUT\nfoo\nwatched") && Date.now() < deadline) {
            await ok([...ep, "put", "foo", `watched${i++}`]);
            await Promise.race([read, new Promise((r) => setTimeout(r, 300))]);
          }
          assert(seen.includes("PUT\nfoo\nwatched"), `the watch printed: ${JSON.stringify(seen)}`);
        } finally {
          try {
            watcher.kill("SIGTERM");
          } catch {
            // already gone
          }
          await reader.cancel().catch(() => {});
          await watcher.stderr.cancel().catch(() => {});
          await watcher.status;
        }
      });

      await t.step("endpoint status --cluster (member URLs as endpoints)", async () => {
        const out = await ok([...ep, "endpoint", "status", "--cluster"]);
        assert(out.startsWith(`${url}, `), out);
        const single = await ok([...ep, "endpoint", "status"]);
        assert(single.startsWith(`${url}, `), single);
      });

      await t.step("snapshot save: a server stream to its end", async () => {
        const viaUrl = `${dir}/url.db`;
        const viaHost = `${dir}/host.db`;
        assert(
          (await ok([...ep, "snapshot", "save", viaUrl])).includes(`Snapshot saved at ${viaUrl}`),
        );
        await ok(["--endpoints", cairn.endpoint, "snapshot", "save", viaHost]);
        const bytes = Deno.readFileSync(viaUrl);
        assert(bytes.length > 32 * 1024, `${bytes.length} bytes: more than one message`);
        assertEquals(bytes, Deno.readFileSync(viaHost), "the same copy either way");
      });

      await t.step("--endpoints host:port still works", async () => {
        assertEquals(
          await ok(["--endpoints", cairn.endpoint, "get", "foo", "--print-value-only"]).then((s) =>
            s.startsWith("watched")
          ),
          true,
        );
        const out = await ok(["--endpoints", cairn.endpoint, "endpoint", "status"]);
        assert(out.startsWith(`${cairn.endpoint}, `), out);
      });
    } finally {
      await cairn.terminate();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
