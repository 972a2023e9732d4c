/**
 * Differential test of ctl's `user`, `role` and `auth` commands and its
 * `--user`/`--password` flags, with the etcdctl differential harness
 * (etcdctl_diff.ts): the same command sequence, each command with the same
 * arguments and stdin, run by etcdctl 3.4 against a fresh etcd 3.4 and by
 * cairn's ctl against a second server; exit code, stdout and stderr must be
 * equal (clientv3's warning log lines dropped, as ctl logs none):
 * - ctl against a second etcd 3.4: the whole sequence, including what
 *   depends on the server refusing requests once auth is on (a request
 *   without --user, a wrong password, a user without permission, the root
 *   user's protections);
 * - ctl against cairn: every command that does not depend on the server
 *   refusing a request for want of a token or a permission.
 *
 * Covered: help and argument errors of every subcommand; user add with
 * `name:password`, `--new-user-password`, `--no-password`, a password
 * asked for twice (equal, different, empty) and read from stdin with
 * `--interactive=false`; user get [--detail], list, passwd, grant-role,
 * revoke-role, delete; role add, get, list, delete, grant-permission and
 * revoke-permission of a key, a range, a prefix, every key from a key and
 * the empty key (with --prefix, --from-key, both, an end key); every
 * response in every -w format (simple, json, fields, protobuf, table);
 * server errors; auth enable (which adds the root role itself) and
 * disable; --user name:password, --user with --password, --user with the
 * password asked for on stdin.
 *
 * Skipped when the etcd or etcdctl binary is absent.
 */
import { HAVE_ETCD, runs } from "../servers.ts";
import {
  CTL_COMMAND,
  Diff,
  newMasks,
  type Server,
  type Side,
  startServer,
  TooManyDifferences,
} from "./etcdctl_diff.ts";

const HAVE_ETCDCTL = HAVE_ETCD && (await runs("etcdctl", ["version"]));

/** -w formats every command is printed in. */
const FORMATS = ["simple", "json", "fields", "protobuf", "table"];

/** The side of a single member: its endpoint and dir masked. */
function side(server: Server, label: string, cli?: readonly string[]): Side {
  return {
    label,
    endpoints: server.endpoint,
    dir: server.dir,
    masks: {
      ...newMasks([[server.endpoint, "<client>"], [server.dir, "<dir>"]]),
      dropClientWarnings: true,
    },
    vars: new Map(),
    cli,
  };
}

/** Servers of `kinds` (cairn with a low bcrypt cost), closed after `fn`. */
async function withServers(
  kinds: ("etcd" | "cairn")[],
  fn: (servers: Server[]) => Promise<void>,
): Promise<void> {
  const started = await Promise.allSettled(
    kinds.map((k) => startServer(k, k === "cairn" ? ["--bcrypt-cost", "4"] : [])),
  );
  try {
    const servers = started.map((s) => {
      if (s.status === "rejected") throw s.reason;
      return s.value;
    });
    await fn(servers);
  } finally {
    await Promise.all(started.map((s) => s.status === "fulfilled" && s.value.close()));
  }
}

/** Help and argument errors: no request is made. */
async function argumentCases(d: Diff): Promise<void> {
  for (
    const c of [
      "user",
      "role",
      "auth",
      "user bogus",
      "user add -h",
      "user get --help",
      "user passwd -h",
      "role grant-permission --help",
      "role revoke-permission -h",
      "auth enable -h",
      "user add",
      "user add a b",
      "user add :pw",
      "user delete",
      "user get",
      "user get a b",
      "user list extra",
      "user passwd",
      "user grant-role a",
      "user revoke-role a",
      "role add",
      "role delete a b",
      "role get",
      "role list extra",
      "role grant-permission r read",
      "role grant-permission r bogus k",
      "role grant-permission r read k --prefix --from-key",
      "role grant-permission r read k e --prefix",
      "role grant-permission r read k e --from-key",
      "role revoke-permission r",
      "role revoke-permission r a --prefix --from-key",
      "role revoke-permission r a b --prefix",
      "role revoke-permission r a b --from-key",
      "auth enable x",
      "auth disable x",
      "user get a --bogus",
    ]
  ) await d.ctl(c);
  await d.ctl(["role", "revoke-permission", "r", "", "--prefix", "--from-key"]);
}

/**
 * Users and roles while auth is off, every format; among them a second
 * permission on a key that already has one with the same range end,
 * granted after a range starting at that key: etcd 3.4 then keeps both (its
 * search for the permission to update stops at the range).
 */
async function managementCases(d: Diff): Promise<void> {
  await d.ctl("auth enable");
  await d.ctl("user add root:rootpw");
  await d.ctl("user add root:other");
  await d.ctl("user add foo --interactive=false", { stdin: "secret\n" });
  await d.ctl("user add bar", { stdin: "b1\nb1\n" });
  await d.ctl("user add baz", { stdin: "b1\nb2\n" });
  await d.ctl("user add qux", { stdin: "\n" });
  await d.ctl("user add quux --interactive=false", { stdin: "  two words\n" });
  await d.ctl("user add np --no-password -w json");
  await d.ctl("user add nup --new-user-password=a:b -w fields");
  await d.ctl("user add c:d:e -w protobuf");
  await d.ctl("user add tbl:x -w table");
  await d.ctl("user list");

  await d.ctl("role add r1");
  await d.ctl("role add r1");
  for (const w of FORMATS) await d.ctl(`role add r-${w} -w ${w}`);
  await d.ctl("role grant-permission r1 read foo");
  await d.ctl("role grant-permission r1 ReadWrite --prefix p/");
  await d.ctl("role grant-permission r1 write --from-key z");
  await d.ctl("role grant-permission r1 read a b");
  await d.ctl("role grant-permission r1 read a");
  await d.ctl("role grant-permission r1 write a");
  await d.ctl(["role", "grant-permission", "r1", "read", "", "--prefix"]);
  await d.ctl(["role", "grant-permission", "r1", "write", ""]);
  await d.ctl(["role", "grant-permission", "r1", "write", "", "ignored", "--from-key"]);
  for (const w of FORMATS) {
    await d.ctl(`role grant-permission r-${w} readwrite k -w ${w}`);
    await d.ctl(`role get r1 -w ${w}`);
    await d.ctl(`role list -w ${w}`);
    await d.ctl(`user list -w ${w}`);
  }
  await d.ctl("role grant-permission nope read k");
  await d.ctl("role get nope");

  await d.ctl("user grant-role foo r1");
  await d.ctl("user grant-role foo r-json -w json");
  await d.ctl("user grant-role foo nope");
  await d.ctl("user grant-role nobody r1");
  for (const w of FORMATS) {
    await d.ctl(`user get foo -w ${w}`);
    await d.ctl(`user get foo --detail -w ${w}`);
  }
  await d.ctl("user get bar --detail");
  await d.ctl("user get nobody");
  await d.ctl("user revoke-role foo r-simple");
  await d.ctl("user revoke-role foo r-json -w fields");
  await d.ctl("user passwd foo --interactive=false", { stdin: "newsecret\n" });
  await d.ctl("user passwd bar -w json", { stdin: "b3\nb3\n" });
  await d.ctl("user passwd bar", { stdin: "b3\nb4\n" });
  await d.ctl("user passwd nobody --interactive=false", { stdin: "x\n" });

  for (const w of FORMATS) await d.ctl(`role revoke-permission r-${w} k -w ${w}`);
  await d.ctl("role revoke-permission r1 a b");
  await d.ctl("role revoke-permission r1 --from-key z");
  await d.ctl("role revoke-permission r1 a");
  await d.ctl("role revoke-permission r1 a");
  await d.ctl(["role", "revoke-permission", "r1", ""]);
  await d.ctl(["role", "revoke-permission", "r1", "", "--prefix"]);
  await d.ctl("role revoke-permission nope k");
  await d.ctl("role get r1");

  await d.ctl("user delete c -w json");
  await d.ctl("user delete c");
  await d.ctl("role delete r-table -w table");
  await d.ctl("role delete r-table");
  await d.ctl("user list");
  await d.ctl("role list");
}

/**
 * Auth on: enable (adding the root role), --user in its three forms, and
 * disable. With `refusals`, also what depends on the server refusing
 * requests (no user, a wrong password, no permission, root's protections).
 */
async function enabledCases(d: Diff, refusals: boolean): Promise<void> {
  await d.ctl("auth enable");
  await d.ctl("auth enable --user root:rootpw");
  await d.ctl("--user root:rootpw put foo bar");
  await d.ctl("--user root:rootpw user list -w json");
  await d.ctl("--user root --password rootpw role list");
  await d.ctl("--user root get foo", { stdin: "rootpw\n" });
  await d.ctl("--user foo:newsecret get foo");
  await d.ctl("--user foo:newsecret --password ignored-colon get foo");
  await d.ctl("--user=root:rootpw user get root --detail");
  if (refusals) {
    await d.ctl("get foo");
    await d.ctl("user list");
    await d.ctl("--user root:wrong get foo");
    await d.ctl("--user nobody:x get foo");
    await d.ctl("--user root get foo", { stdin: "wrong\n" });
    await d.ctl("--user foo:newsecret put foo 1");
    await d.ctl("--user foo:newsecret put p/x 1");
    await d.ctl("--user foo:newsecret get p/x");
    await d.ctl("--user foo:newsecret auth disable");
    await d.ctl("--user foo:newsecret user list");
    await d.ctl("--user root:rootpw user delete root");
    await d.ctl("--user root:rootpw role delete root");
    await d.ctl("--user root:rootpw user revoke-role root root");
    await d.ctl("auth disable");
    await d.ctl("--user root:rootpw user passwd foo --interactive=false", { stdin: "third\n" });
    await d.ctl("--user foo:newsecret get foo");
    await d.ctl("--user foo:third get foo");
  }
  await d.ctl("--user root:rootpw auth disable");
  await d.ctl("auth disable");
  await d.ctl("--user root:rootpw get foo");
  await d.ctl("get foo");
}

/** Runs `fn` and reports every difference (up to the harness's limit). */
async function report(d: Diff, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (!(err instanceof TooManyDifferences)) throw err;
  }
  d.finish();
}

Deno.test({
  name: "ctl user, role, auth against etcd 3.4 print what etcdctl prints, refusals included",
  ignore: !HAVE_ETCDCTL,
  async fn() {
    await withServers(["etcd", "etcd"], async ([ref, sub]) => {
      const d = new Diff(side(ref, "etcdctl"), side(sub, "cairn ctl", CTL_COMMAND));
      await report(d, async () => {
        await argumentCases(d);
        await managementCases(d);
        await enabledCases(d, true);
      });
    });
  },
});

Deno.test({
  name: "ctl user, role, auth against cairn print what etcdctl prints against etcd 3.4",
  ignore: !HAVE_ETCDCTL,
  async fn() {
    await withServers(["etcd", "cairn"], async ([ref, sub]) => {
      const d = new Diff(
        side(ref, "etcdctl on etcd"),
        side(sub, "cairn ctl on cairn", CTL_COMMAND),
      );
      await report(d, async () => {
        await managementCases(d);
        await enabledCases(d, true);
      });
    });
  },
});
