/**
 * etcd 3.4's API definitions (the .proto files in `./proto/`) as a protobufjs
 * reflection root: the gRPC services, their rpcs and streaming flags, and
 * every message and enum of etcdserverpb, mvccpb, authpb, v3lockpb and
 * v3electionpb. The messages themselves are encoded and decoded by
 * core/api/proto.ts (driven by core/api/codec.ts's SCHEMA); this root
 * describes the services and lets tests check SCHEMA against etcd's files.
 *
 * The files are read relative to this module (`import.meta.url`), so a
 * `deno compile`d binary needs them embedded: `--include server/grpc/proto/`.
 *
 * @example
 * ```ts
 * import { loadProtos } from "./proto.ts";
 * const root = loadProtos();
 * const kv = root.lookupService("etcdserverpb.KV");
 * kv.methods.Range.responseType; // "RangeResponse"
 * ```
 *
 * @module
 */

import protobuf from "protobufjs";

/**
 * The .proto files, relative to `server/grpc/proto/`, each after the files it
 * imports (their import paths are relative to the same directory).
 */
export const PROTO_FILES: readonly string[] = [
  "mvccpb/kv.proto",
  "authpb/auth.proto",
  "etcdserverpb/rpc.proto",
  "v3lockpb/v3lock.proto",
  "v3electionpb/v3election.proto",
];

/**
 * Parses etcd 3.4's .proto files into one resolved protobufjs root, field
 * names kept as the files spell them (`range_end`, `remaining_TTL`, `ID`).
 * Synchronous; each call returns a new root.
 *
 * @throws {Deno.errors.NotFound} if a file is missing (e.g. a compiled binary
 *   built without `--include server/grpc/proto/`).
 * @throws {Error} if a file does not parse or a type does not resolve.
 */
export function loadProtos(): protobuf.Root {
  const root = new protobuf.Root();
  for (const file of PROTO_FILES) {
    const source = Deno.readTextFileSync(new URL(`./proto/${file}`, import.meta.url));
    protobuf.parse(source, root, { keepCase: true });
  }
  root.resolveAll();
  return root;
}
