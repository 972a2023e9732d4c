/**
 * A small gRPC client for tests: @grpc/grpc-js calls whose messages are
 * encoded and decoded by protobufjs from the project's .proto files (an
 * implementation independent of the server's codec), as plain objects
 * (int64s as decimal strings, bytes as Buffers, enums by name, zero values
 * omitted as proto3 writes them).
 */
import * as grpc from "@grpc/grpc-js";
import type protobuf from "protobufjs";
import { loadProtos } from "../server/grpc/proto.ts";

const root: protobuf.Root = loadProtos();

/** A decoded message as a plain object. */
// deno-lint-ignore no-explicit-any
export type Msg = Record<string, any>;

const TO_OBJECT: protobuf.IConversionOptions = { longs: String, enums: String, bytes: Buffer };

/** The method's request and response types, from the service definitions. */
function methodTypes(path: string): { req: protobuf.Type; res: protobuf.Type } {
  const [, service, method] = path.split("/");
  const m = root.lookupService(service).methods[method];
  if (m === undefined) throw new Error(`no method ${path}`);
  m.resolve();
  return { req: m.resolvedRequestType!, res: m.resolvedResponseType! };
}

/** Encode `obj` as the request of `path`. */
export function encodeRequest(path: string, obj: Msg): Buffer {
  const { req } = methodTypes(path);
  return Buffer.from(req.encode(req.fromObject(obj)).finish());
}

/** Decode `bytes` as the response of `path`. */
export function decodeResponse(path: string, bytes: Uint8Array): Msg {
  const { res } = methodTypes(path);
  return res.toObject(res.decode(bytes), TO_OBJECT);
}

const raw = (b: Buffer) => b;

/** A gRPC error as tests see it: code and message. */
export interface CallError {
  code: number;
  details: string;
}

/** A connection to one endpoint (`host:port`). */
export class TestClient {
  readonly client: grpc.Client;

  constructor(endpoint: string) {
    this.client = new grpc.Client(endpoint, grpc.credentials.createInsecure());
  }

  /** A unary call with an object request; rejects with the gRPC error. */
  unary(path: string, req: Msg, metadata = new grpc.Metadata()): Promise<Msg> {
    return this.unaryRaw(path, encodeRequest(path, req), metadata).then((b) =>
      decodeResponse(path, b)
    );
  }

  /** A unary call with raw request bytes (malformed input); resolves with the raw answer. */
  unaryRaw(path: string, bytes: Buffer, metadata = new grpc.Metadata()): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(path, raw, raw, bytes, metadata, (err, res) => {
        if (err) reject(err);
        else resolve(res!);
      });
    });
  }

  /** A unary call's error (code and message); fails the test if it succeeds. */
  async error(path: string, req: Msg | Buffer, metadata?: grpc.Metadata): Promise<CallError> {
    try {
      if (Buffer.isBuffer(req)) await this.unaryRaw(path, req, metadata);
      else await this.unary(path, req, metadata);
    } catch (err) {
      const e = err as grpc.ServiceError;
      return { code: e.code, details: e.details };
    }
    throw new Error(`${path} succeeded`);
  }

  /** A bidirectional stream: write objects, read decoded responses in order. */
  bidi(path: string, metadata = new grpc.Metadata()): TestStream {
    return new TestStream(path, this.client.makeBidiStreamRequest(path, raw, raw, metadata));
  }

  /** A server stream for one request. */
  serverStream(path: string, req: Msg): TestStream {
    return new TestStream(
      path,
      this.client.makeServerStreamRequest(path, raw, raw, encodeRequest(path, req)),
    );
  }

  close(): void {
    this.client.close();
  }
}

/** A stream's responses, read one by one with a timeout. */
export class TestStream {
  readonly #path: string;
  readonly call: grpc.ClientDuplexStream<Buffer, Buffer> | grpc.ClientReadableStream<Buffer>;
  readonly #queue: Msg[] = [];
  #waiter: (() => void) | undefined;
  /** The stream's final status once it ended. */
  status: grpc.StatusObject | undefined;
  /** The stream's error, if it ended with one. */
  error: grpc.ServiceError | undefined;

  constructor(
    path: string,
    call: grpc.ClientDuplexStream<Buffer, Buffer> | grpc.ClientReadableStream<Buffer>,
  ) {
    this.#path = path;
    this.call = call;
    call.on("data", (b: Buffer) => {
      this.#queue.push(decodeResponse(path, b));
      this.#wake();
    });
    call.on("error", (e: grpc.ServiceError) => {
      this.error = e;
      this.#wake();
    });
    call.on("status", (s: grpc.StatusObject) => {
      this.status = s;
      this.#wake();
    });
  }

  #wake() {
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }

  /** Send one request object. */
  write(req: Msg): void {
    (this.call as grpc.ClientDuplexStream<Buffer, Buffer>).write(encodeRequest(this.#path, req));
  }

  /** Send raw bytes as one message. */
  writeRaw(bytes: Buffer): void {
    (this.call as grpc.ClientDuplexStream<Buffer, Buffer>).write(bytes);
  }

  /** The next response; undefined once the stream ended; throws after `timeoutMs`. */
  async next(timeoutMs = 5000): Promise<Msg | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.#queue.shift();
      if (m !== undefined) return m;
      if (this.status !== undefined || this.error !== undefined) return undefined;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no response on ${this.#path} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  /** Whether a response arrives within `ms` (without taking it). */
  async quiet(ms: number): Promise<boolean> {
    await new Promise((r) => setTimeout(r, ms));
    return this.#queue.length === 0;
  }

  /** End the client side. */
  end(): void {
    (this.call as grpc.ClientDuplexStream<Buffer, Buffer>).end();
  }

  /** Cancel the call. */
  cancel(): void {
    this.call.cancel();
  }
}
