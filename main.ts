/**
 * The cairn executable: `main.ts [flags]` runs a member with etcd's flags
 * and `ETCD_*` environment variables; `main.ts ctl …` is the etcdctl-style
 * client.
 *
 * @module
 */
// The server (and with it lmdb's native binding) is imported only when a
// server runs, so `ctl` needs no FFI permission.
import { ConfigError, parseConfig, usage } from "./server/config.ts";
import { CAIRN_VERSION, ETCD_API_VERSION } from "./version.ts";

async function runServer(args: string[]): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(usage());
    return 0;
  }
  if (args.includes("--version")) {
    console.log(`cairn Version: ${CAIRN_VERSION}\netcd API Version: ${ETCD_API_VERSION}`);
    return 0;
  }
  let config;
  try {
    config = parseConfig(args, Deno.env.toObject());
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`cairn: ${err.message}`);
      return 2;
    }
    throw err;
  }
  // Listen for signals before anything starts serving, so that a signal
  // during start-up still ends in a clean shutdown.
  const { promise: stopped, resolve: stop } = Promise.withResolvers<string>();
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  const handlers = signals.map((sig) => [sig, () => stop(sig)] as const);
  for (const [sig, h] of handlers) Deno.addSignalListener(sig, h);
  const { startServer } = await import("./server/mod.ts");
  const { DataDirLockedError } = await import("./server/data_dir_lock.ts");
  const { AddressInUseError } = await import("./server/listen.ts");
  let server;
  try {
    server = await startServer(config);
  } catch (err) {
    if (err instanceof DataDirLockedError || err instanceof AddressInUseError) {
      console.error(err.message);
      return 1;
    }
    throw err;
  }
  console.error(
    `cairn ${CAIRN_VERSION}: member ${config.name} (data dir ${config.dataDir}) serving client requests on ${
      server.clientUrls.join(", ")
    }`,
  );
  const sig = await stopped;
  console.error(`cairn: received ${sig}, shutting down`);
  for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
  await server.close();
  return 0;
}

if (import.meta.main) {
  const args = Deno.args;
  if (args[0] === "ctl") {
    const { runCtl } = await import("./cli/ctl.ts");
    Deno.exit(await runCtl(args.slice(1)));
  }
  Deno.exit(await runServer(args));
}
