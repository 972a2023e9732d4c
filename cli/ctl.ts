/**
 * `ctl`: etcdctl 3.4's command grammar and output over cairn's HTTP client.
 * `deno task ctl …` (main.ts) calls {@linkcode runCtl} and exits with its
 * result, so scripts written for etcdctl keep working:
 *
 * ```
 * ctl [global flags] put [--lease hex] [--prev-kv] [--ignore-value] [--ignore-lease] <key> [value]
 * ctl [global flags] get [--prefix|--from-key] [--limit n] [--rev n] [--keys-only]
 *                        [--count-only] [--print-value-only] [--sort-by T] [--order O]
 *                        [--consistency l|s] <key> [range_end]
 * ctl [global flags] del [--prefix|--from-key] [--prev-kv] <key> [range_end]
 * ctl [global flags] txn [-i]
 * ctl [global flags] compaction [--physical] <revision>
 * ctl [global flags] watch [--prefix] [--rev n] [--prev-kv] [--progress-notify] [-i]
 *                          [key or prefix] [range_end] [--] [exec-command arg1 arg2 ...]
 * ctl [global flags] endpoint health|status [--cluster] | hashkv [--rev n] [--cluster]
 * ctl [global flags] alarm list | disarm
 * ctl [global flags] defrag [--cluster]
 * ctl [global flags] member list | add <name> --peer-urls=u1,u2 [--learner] | remove <hex id>
 *                    | update <hex id> --peer-urls=u1,u2 | promote <hex id>
 * ctl [global flags] move-leader <hex member id>
 * ctl [global flags] lease grant <ttl> | revoke <hex id> | timetolive <hex id> [--keys] | list
 *                    | keep-alive [--once] <hex id>
 * ctl [global flags] lock [--ttl seconds] <lockname> [exec-command arg1 arg2 ...]
 * ctl [global flags] elect [-l] <election-name> [proposal]
 * ctl [global flags] snapshot save <file>
 * ctl snapshot restore <file> [--data-dir d] [--name n] [--initial-cluster c]
 *                    [--initial-cluster-token t] [--initial-advertise-peer-urls u]
 *                    [--skip-hash-check] [--bump-revision n --mark-compacted]
 * ctl [-w simple|json|fields|table] snapshot status <file>
 * ctl [global flags] user add <name[:password]> [--interactive=false] [--new-user-password p]
 *                    [--no-password] | delete <name> | get <name> [--detail] | list
 *                    | passwd <name> [--interactive=false] | grant-role <name> <role>
 *                    | revoke-role <name> <role>
 * ctl [global flags] role add|delete|get <role> | list
 *                    | grant-permission [--prefix|--from-key] <role> <read|write|readwrite> <key> [end]
 *                    | revoke-permission [--prefix|--from-key] <role> <key> [end]
 * ctl [global flags] auth enable | disable
 * ctl version
 *
 * global flags: --endpoints a,b (ETCDCTL_ENDPOINTS; default 127.0.0.1:2379),
 *   -w/--write-out simple|json|fields|table|protobuf, --hex, --dial-timeout 2s,
 *   --command-timeout 5s, --user name[:password] (prompts for the password
 *   when it is not given), --password (every global flag also reads
 *   ETCDCTL_<NAME>)
 * ```
 *
 * Exit codes and error text are etcdctl's: `Error: <message>` on stderr,
 * exit 1 for server errors, 128 for bad arguments, 3 for bad txn input,
 * 2 when lease timetolive, list or keep-alive --once fails or --user cannot
 * authenticate, 4 for an unsupported output format, 5 when a watch ends or
 * a snapshot save fails.
 *
 * @module
 */

import { AuthenticationError, Client, type ClientTlsOptions } from "../client/mod.ts";
import { EtcdError } from "../core/errors.ts";
import * as alarm from "./commands/alarm.ts";
import * as auth from "./commands/auth.ts";
import * as compaction from "./commands/compaction.ts";
import * as defrag from "./commands/defrag.ts";
import * as del from "./commands/del.ts";
import * as elect from "./commands/elect.ts";
import * as endpoint from "./commands/endpoint.ts";
import * as get from "./commands/get.ts";
import * as lease from "./commands/lease.ts";
import * as lock from "./commands/lock.ts";
import * as member from "./commands/member.ts";
import * as moveLeader from "./commands/move_leader.ts";
import * as put from "./commands/put.ts";
import * as role from "./commands/role.ts";
import * as snapshot from "./commands/snapshot.ts";
import * as txn from "./commands/txn.ts";
import * as user from "./commands/user.ts";
import * as version from "./commands/version.ts";
import * as watch from "./commands/watch.ts";
import type { CtlContext, CtlIO } from "./context.ts";
import { CtlError, ExitCode } from "./exit.ts";
import { goOsError } from "../core/go_os_error.ts";
import {
  convertFlagValue,
  FlagError,
  type FlagKind,
  type FlagSpec,
  type FlagValue,
  parseFlags,
} from "./flags.ts";
import { newPrinter, type Out } from "./printer.ts";
import { askPassword, StdinReader, sttyEcho } from "./password.ts";
import { matchCommand } from "./txn_grammar.ts";
import { HELP } from "./usage.ts";

export type { CtlIO, FlagKind, FlagSpec, FlagValue, Out };

/** etcdctl's global flags with its defaults (durations in milliseconds). */
export const GLOBAL_FLAGS: readonly FlagSpec[] = [
  { name: "endpoints", kind: "stringSlice", default: ["127.0.0.1:2379"] },
  { name: "debug", kind: "bool", default: false },
  { name: "write-out", short: "w", kind: "string", default: "simple" },
  { name: "hex", kind: "bool", default: false },
  { name: "dial-timeout", kind: "duration", default: 2000 },
  { name: "command-timeout", kind: "duration", default: 5000 },
  { name: "keepalive-time", kind: "duration", default: 2000 },
  { name: "keepalive-timeout", kind: "duration", default: 6000 },
  { name: "insecure-transport", kind: "bool", default: true },
  { name: "insecure-discovery", kind: "bool", default: true },
  { name: "insecure-skip-tls-verify", kind: "bool", default: false },
  { name: "cert", kind: "string", default: "" },
  { name: "key", kind: "string", default: "" },
  { name: "cacert", kind: "string", default: "" },
  { name: "user", kind: "string", default: "" },
  { name: "password", kind: "string", default: "" },
  { name: "discovery-srv", short: "d", kind: "string", default: "" },
  { name: "discovery-srv-name", kind: "string", default: "" },
];

/** cobra's `-h/--help` on every command. */
const HELP_FLAG: FlagSpec = { name: "help", short: "h", kind: "bool", default: false };

/** Global flags cairn's ctl parses but cannot honour yet (DNS discovery). */
const UNSUPPORTED_GLOBALS = ["discovery-srv"];

/** What the client authenticates with: a user and its password, or a prompt for it. */
interface Credentials {
  username: string;
  password: string | (() => Promise<string>);
}

/**
 * etcdctl's `--user` and `--password`: `--user name:password`, `--user
 * name --password pw` (then the user is taken whole, colons included), or
 * `--user name` alone, whose password is asked for (`Password: `) when the
 * client first needs it, once per run. Without `--user`, none (`--password`
 * alone is ignored, as etcdctl does).
 */
export function credentialsFromFlags(
  user: string,
  password: string,
  ask: () => Promise<string>,
): Credentials | undefined {
  if (user === "") return undefined;
  if (password !== "") return { username: user, password };
  const colon = user.indexOf(":");
  if (colon >= 0) return { username: user.slice(0, colon), password: user.slice(colon + 1) };
  let asked: Promise<string> | undefined;
  return { username: user, password: () => asked ??= ask() };
}

/**
 * The client TLS etcdctl's flags ask for: with any of --cert, --key and
 * --cacert (files read here), or --insecure-transport=false, connections
 * use TLS and a bare `host:port` endpoint becomes `https://host:port`, as
 * etcdctl dials it; otherwise undefined.
 *
 * @throws {CtlError} (bad arguments) with etcdctl's message for a flag given
 *   as an empty string, --cert without --key or the reverse, or a file that
 *   cannot be read; for --insecure-skip-tls-verify, which Deno's fetch
 *   cannot do.
 */
async function clientTls(
  values: Map<string, unknown>,
  changed: Set<string>,
): Promise<ClientTlsOptions | undefined> {
  const path = (flag: string): string => {
    const value = values.get(flag) as string;
    if (value === "" && changed.has(flag)) {
      throw new CtlError(ExitCode.BadArgs, `empty string is passed to --${flag} option`);
    }
    return value;
  };
  const [certPath, keyPath, caPath] = [path("cert"), path("key"), path("cacert")];
  const given = certPath !== "" || keyPath !== "" || caPath !== "";
  if (!given && values.get("insecure-transport") !== false) return undefined;
  if (values.get("insecure-skip-tls-verify") === true) {
    throw new CtlError(
      ExitCode.BadArgs,
      "--insecure-skip-tls-verify is not supported by cairn ctl",
    );
  }
  if ((certPath === "") !== (keyPath === "")) {
    throw new CtlError(
      ExitCode.BadArgs,
      `KeyFile and CertFile must both be present[key: ${keyPath}, cert: ${certPath}]`,
    );
  }
  const read = async (file: string): Promise<string | undefined> => {
    if (file === "") return undefined;
    try {
      return await Deno.readTextFile(file);
    } catch (err) {
      throw new CtlError(ExitCode.BadArgs, `open ${file}: ${goOsError(err)}`);
    }
  };
  const cert = await read(certPath);
  const key = await read(keyPath);
  const cacert = await read(caPath);
  return { caCerts: cacert === undefined ? undefined : [cacert], cert, key };
}

interface Command {
  flags: readonly FlagSpec[];
  /** The subcommand names of a command group (`endpoint`, `lease`). */
  SUBCOMMANDS?: readonly string[];
  /** Flags of one subcommand only. */
  SUB_FLAGS?: Readonly<Record<string, readonly FlagSpec[]>>;
  run(ctx: CtlContext, args: string[], sub: string): Promise<void>;
}

const COMMANDS: Record<string, Command> = {
  get,
  put,
  del,
  txn,
  compaction,
  endpoint,
  alarm,
  auth,
  defrag,
  lease,
  lock,
  elect,
  watch,
  member,
  "move-leader": moveLeader,
  snapshot,
  version,
  user,
  role,
};

const USAGE = `NAME:
\tetcdctl - A simple command line client for etcd3.

USAGE:
\tetcdctl [flags] <command>

COMMANDS:
\tget\t\t\tGets the key or a range of keys
\tput\t\t\tPuts the given key into the store
\tdel\t\t\tRemoves the specified key or range of keys [key, range_end)
\ttxn\t\t\tTxn processes all the requests in one transaction
\twatch\t\t\tWatches events stream on keys or prefixes
\tcompaction\t\tCompacts the event history in etcd
\tdefrag\t\t\tDefragments the storage of the etcd members with given endpoints
\tlock\t\t\tAcquires a named lock
\telect\t\t\tObserves and participates in leader election
\tendpoint hashkv\t\tPrints the KV history hash for each endpoint in --endpoints
\tendpoint health\t\tChecks the healthiness of endpoints specified in \`--endpoints\` flag
\tendpoint status\t\tPrints out the status of endpoints specified in \`--endpoints\` flag
\talarm disarm\t\tDisarms all alarms
\talarm list\t\tLists all alarms
\tmember add\t\tAdds a member into the cluster
\tmember list\t\tLists all members in the cluster
\tmember promote\t\tPromotes a non-voting member in the cluster
\tmember remove\t\tRemoves a member from the cluster
\tmember update\t\tUpdates a member in the cluster
\tmove-leader\t\tTransfers leadership to another etcd cluster member.
\tsnapshot restore\tRestores an etcd member snapshot to an etcd directory
\tsnapshot save\t\tStores an etcd node backend snapshot to a given file
\tsnapshot status\t\tGets backend snapshot status of a given file
\tversion\t\t\tPrints the version of etcdctl
`;

/** Finds the command words (`get`, or `endpoint status`, `lease grant`) among the arguments. */
function locateCommand(args: readonly string[]): { at: number[]; words: string[] } {
  const valued = new Set(
    GLOBAL_FLAGS.filter((f) => f.kind !== "bool").flatMap((f) =>
      f.short ? [`--${f.name}`, `-${f.short}`] : [`--${f.name}`]
    ),
  );
  const at: number[] = [];
  const words: string[] = [];
  for (let i = 0; i < args.length && words.length < 2; i++) {
    const a = args[i];
    if (a === "--") break;
    if (a.startsWith("-") && a.length > 1) {
      if (!a.includes("=") && valued.has(a)) i++;
      continue;
    }
    at.push(i);
    words.push(a);
    const name = matchCommand(a, Object.keys(COMMANDS));
    if (words.length === 1 && COMMANDS[name ?? ""]?.SUBCOMMANDS === undefined) break;
  }
  return { at, words };
}

function envName(flag: string): string {
  return "ETCDCTL_" + flag.toUpperCase().replace(/-/g, "_");
}

/** The process's stdio and environment. */
export function denoIO(): CtlIO {
  const enc = new TextEncoder();
  const writer = (f: { writeSync(p: Uint8Array): number }): Out => ({
    write(data) {
      let b = typeof data === "string" ? enc.encode(data) : data;
      try {
        while (b.length > 0) b = b.subarray(f.writeSync(b));
      } catch (e) {
        // A closed pipe (`ctl get … | head`): drop the rest, as a Go program dies quietly.
        if (!(e instanceof Deno.errors.BrokenPipe)) throw e;
      }
    },
  });
  return {
    stdout: writer(Deno.stdout),
    stderr: writer(Deno.stderr),
    stdin: () => Deno.stdin.readable,
    env: (name) => {
      try {
        return Deno.env.get(name);
      } catch {
        return undefined;
      }
    },
    isTerminal: () => Deno.stderr.isTerminal(),
    setEcho: sttyEcho,
  };
}

/**
 * Runs one ctl command line (the arguments after `ctl`) and returns the
 * process exit code (0 success, 1 error, 2 panic, 3 bad txn input,
 * 4 unsupported format, 128 bad arguments), having written etcdctl's output
 * to `io.stdout` and its errors to `io.stderr`.
 */
export async function runCtl(args: string[], io: CtlIO = denoIO()): Promise<number> {
  const fail = (e: CtlError): number => {
    if (e.usage !== undefined) io.stderr.write(e.usage);
    io.stderr.write(e.bare ? e.message : `Error: ${e.message}\n`);
    return e.exitCode;
  };
  const { at, words } = locateCommand(args);
  if (words.length === 0) {
    io.stdout.write(USAGE);
    return ExitCode.Success;
  }
  const name = matchCommand(words[0], Object.keys(COMMANDS));
  if (name === undefined) {
    const msg = `unknown command "${words[0]}" for "etcdctl"`;
    io.stderr.write(`Error: ${msg}\nRun 'etcdctl --help' for usage.\nError: ${msg}\n`);
    return ExitCode.Error;
  }
  const cmd = COMMANDS[name];
  let sub = "";
  if (cmd.SUBCOMMANDS !== undefined) {
    // A group without a known subcommand prints its help (after checking its flags, as cobra).
    sub = (words[1] === undefined ? undefined : matchCommand(words[1], cmd.SUBCOMMANDS)) ?? "";
  }
  const rest = args.filter((_, i) => !at.includes(i));
  const help = HELP[sub === "" ? name : `${name} ${sub}`];
  let parsed;
  try {
    const subFlags = cmd.SUB_FLAGS?.[sub] ?? [];
    parsed = parseFlags(rest, [...GLOBAL_FLAGS, HELP_FLAG, ...cmd.flags, ...subFlags]);
  } catch (e) {
    if (!(e instanceof FlagError)) throw e;
    // cobra: the error, the usage on stdout, then the error again from etcdctl's main.
    io.stdout.write(help);
    io.stderr.write(`Error: ${e.message}\n\nError: ${e.message}\n`);
    return ExitCode.Error;
  }
  if (parsed.values.get("help") === true || (cmd.SUBCOMMANDS !== undefined && sub === "")) {
    io.stdout.write(help);
    return ExitCode.Success;
  }
  const values = parsed.values;
  for (const f of GLOBAL_FLAGS) {
    const v = io.env(envName(f.name));
    if (v === undefined || parsed.changed.has(f.name)) continue;
    try {
      values.set(f.name, convertFlagValue(f.kind, v));
    } catch {
      // etcdctl 3.4 ignores an environment value that does not parse.
    }
  }

  try {
    for (const f of UNSUPPORTED_GLOBALS) {
      if (values.get(f) !== "") {
        throw new CtlError(ExitCode.BadArgs, `--${f} is not supported by cairn ctl yet`);
      }
    }
    const tls = await clientTls(values, parsed.changed);
    const endpoints = (values.get("endpoints") as string[]).map((e) => e.trim()).map((e) =>
      tls !== undefined && !/^[a-z][a-z0-9+.-]*:\/\//i.test(e) ? `https://${e}` : e
    );
    const printer = newPrinter(values.get("write-out") as string, io.stdout, io.stderr, {
      hex: values.get("hex") === true,
    });
    const commandTimeout = values.get("command-timeout") as number;
    const stdinReader = new StdinReader(io.stdin);
    const creds = credentialsFromFlags(
      values.get("user") as string,
      values.get("password") as string,
      async () => {
        try {
          return await askPassword(io, stdinReader, "Password: ");
        } catch (e) {
          throw new CtlError(ExitCode.Error, (e as Error).message);
        }
      },
    );
    let shared: Client | undefined;
    const newClient = (eps: string[]) =>
      new Client({ endpoints: eps, timeout: commandTimeout, tls, ...creds });
    const ctx: CtlContext = {
      io,
      flags: values,
      changed: parsed.changed,
      rawArgs: args.slice(at[0] + 1),
      endpoints,
      commandTimeout,
      printer,
      client: () => shared ??= newClient(endpoints),
      clientFor: (ep) => newClient([ep]),
      stdinReader,
    };
    await cmd.run(ctx, parsed.args, sub);
    return ExitCode.Success;
  } catch (e) {
    if (e instanceof CtlError) return fail(e);
    // clientv3 authenticates while it connects: etcdctl exits as for a failed connection.
    if (e instanceof AuthenticationError) {
      return fail(new CtlError(ExitCode.BadConnection, e.message));
    }
    if (e instanceof EtcdError) return fail(new CtlError(ExitCode.Error, e.message));
    throw e;
  }
}

if (import.meta.main) {
  Deno.exit(await runCtl(Deno.args));
}
