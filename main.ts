/**
 * The cairn executable: `main.ts [flags]` runs a member with etcd's flags
 * and `ETCD_*` environment variables; `main.ts ctl …` is the etcdctl-style
 * client.
 *
 * @module
 */
// The server (and with it lmdb's native binding) is imported only when a
// server runs, so `ctl` needs no FFI permission.
import {
  ConfigError,
  type FlagName,
  FLAGS,
  flagValues,
  type JwtAuthTokenConfig,
  loadJwtTokens,
  parseConfig,
  usage,
} from "./server/config.ts";
import { DataDirLockedError } from "./server/data_dir_lock.ts";
import { AddressInUseError } from "./server/listen.ts";
import { log, LogOutputError, LogOutputs } from "./server/log.ts";
import { CAIRN_VERSION, ETCD_API_VERSION } from "./version.ts";

async function runServer(args: string[]): Promise<number> {
  // --help and --version are the command's output (on stdout, as etcd prints
  // them), not log entries.
  if (args.includes("--help") || args.includes("-h")) {
    console.log(usage());
    return 0;
  }
  if (args.includes("--version")) {
    console.log(`cairn Version: ${CAIRN_VERSION}\netcd API Version: ${ETCD_API_VERSION}`);
    return 0;
  }
  const env = Deno.env.toObject();
  if (givenLogger(args, env) === "capnslog") {
    // etcd 3.4's warning, on stderr, before any log line or flag error.
    console.error(
      "[WARNING] Deprecated '--logger=capnslog' flag is set; use '--logger=zap' flag instead",
    );
  }
  let config;
  try {
    config = parseConfig(args, env);
  } catch (err) {
    if (err instanceof ConfigError) {
      log.fatal("failed to verify flags", { error: err.message });
      return 2;
    }
    throw err;
  }
  let outputs;
  try {
    outputs = LogOutputs.open(config.logOutputs);
  } catch (err) {
    if (err instanceof LogOutputError) {
      log.fatal("failed to verify flags", { error: err.message });
      return 2;
    }
    throw err;
  }
  log.useOutputs(outputs);
  log.level = config.logLevel;
  logStart(config);
  if (config.authToken.type === "jwt") {
    const error = await checkJwt(config.authToken);
    if (error !== undefined) {
      log.fatal("failed to create token provider", { error });
      return 1;
    }
  }
  // Listen for signals before anything starts serving, so that a signal
  // during start-up still ends in a clean shutdown.
  const { promise: stopped, resolve: stop } = Promise.withResolvers<string>();
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  const handlers = signals.map((sig) => [sig, () => stop(sig)] as const);
  for (const [sig, h] of handlers) Deno.addSignalListener(sig, h);
  const { startServer } = await import("./server/mod.ts");
  let server;
  try {
    server = await startServer(config);
  } catch (err) {
    // An operator's error (data dir in use, address taken) needs no stack.
    const expected = err instanceof DataDirLockedError || err instanceof AddressInUseError;
    log.fatal("failed to start cairn", {
      error: err instanceof Error ? err.message : String(err),
      stack: expected || !(err instanceof Error) ? undefined : err.stack,
    });
    return 1;
  }
  log.info("ready to serve client requests", {
    name: config.name,
    "data-dir": config.dataDir,
    "client-urls": server.clientUrls,
  });
  const sig = await stopped;
  log.info("received signal; shutting down", { signal: sig });
  for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
  await server.close();
  log.info("stopped cairn", { name: config.name, "data-dir": config.dataDir });
  return 0;
}

/** The --logger value given on the command line (its last) or as ETCD_LOGGER. */
function givenLogger(args: string[], env: Record<string, string>): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const m = /^--?logger(?:=(.*))?$/.exec(args[i]);
    if (m !== null) value = m[1] ?? args[i + 1];
  }
  return value ?? env.ETCD_LOGGER;
}

/**
 * --auth-token jwt: warn of options etcd does not know (as etcd does) and
 * read the keys, as etcd's token provider does at start; the error etcd
 * exits with, if any.
 */
async function checkJwt(jwt: JwtAuthTokenConfig): Promise<string | undefined> {
  if (jwt.unknownOptions.length > 0) log.warn("unknown JWT options", { keys: jwt.unknownOptions });
  try {
    await loadJwtTokens(jwt);
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  return undefined;
}

/**
 * Log the start: versions, then every flag, in effect or accepted only for
 * compatibility; a compatibility-only flag that was set is also a warning.
 */
function logStart(config: ReturnType<typeof parseConfig>): void {
  log.info("starting cairn", {
    "cairn-version": CAIRN_VERSION,
    "etcd-api-version": ETCD_API_VERSION,
    "deno-version": Deno.version.deno,
    pid: Deno.pid,
  });
  if (config.configFile !== undefined) {
    log.info(
      "loaded server configuration, other configuration command line flags and environment variables will be ignored if provided",
      { path: config.configFile },
    );
  }
  const values = flagValues(config);
  const inEffect: Record<string, unknown> = {};
  const compat: Record<string, unknown> = {};
  for (const flag of Object.keys(FLAGS) as FlagName[]) {
    if ("compatOnly" in FLAGS[flag]) compat[flag] = values[flag];
    else inEffect[flag] = values[flag];
  }
  log.info("flags in effect", inEffect);
  if (Object.keys(compat).length > 0) {
    log.info("flags accepted for compatibility, not in effect", compat);
  }
  for (const flag of config.givenFlags) {
    if ("compatOnly" in FLAGS[flag]) {
      log.warn("flag accepted for compatibility, not in effect", { flag, value: values[flag] });
    }
  }
}

if (import.meta.main) {
  const args = Deno.args;
  if (args[0] === "ctl") {
    const { runCtl } = await import("./cli/ctl.ts");
    Deno.exit(await runCtl(args.slice(1)));
  }
  Deno.exit(await runServer(args));
}
