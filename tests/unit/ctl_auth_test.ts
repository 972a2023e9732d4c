/**
 * ctl's user, role and auth arguments without a server: etcdctl's
 * permission ranges and types, `--user`/`--password`, the password reader
 * (speakeasy's line, fmt.Scanf's word) and the refusals that come before
 * any request, with etcdctl's text and exit codes.
 */
import { memoryIO } from "./ctl_io.ts";
import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { credentialsFromFlags, runCtl } from "../../cli/ctl.ts";
import { permissionType, permRange } from "../../cli/commands/role.ts";
import { StdinReader } from "../../cli/password.ts";
import { CTL_PASSWORD_MAX_BYTES } from "../../core/limits.ts";

const dec = new TextDecoder();
const text = (
  r: { key: Uint8Array; rangeEnd: Uint8Array },
) => [dec.decode(r.key), dec.decode(r.rangeEnd)];

Deno.test("permRange: a key, a range, a prefix, from a key, the empty key", () => {
  assertEquals(text(permRange(["k"], false, false)), ["k", ""]);
  assertEquals(text(permRange(["a", "b"], false, false)), ["a", "b"]);
  assertEquals(text(permRange(["a", "b", "ignored"], false, false)), ["a", "b"]);
  assertEquals(text(permRange(["p/"], true, false)), ["p/", "p0"]);
  assertEquals(text(permRange(["z"], false, true)), ["z", "\0"]);
  assertEquals(text(permRange([""], false, false)), ["\0", ""]);
  assertEquals(text(permRange([""], true, false)), ["\0", "\0"]);
  assertEquals(text(permRange(["", "x"], false, true)), ["\0", "\0"]);
  assertEquals(
    [...permRange(["\u00ff"], true, false).rangeEnd],
    [0xc3, 0xc0],
    "the prefix end of ÿ (c3 bf): its last byte plus one",
  );
});

Deno.test("permRange refuses what etcdctl refuses, in etcdctl's order", () => {
  const refused = (args: string[], prefix: boolean, fromKey: boolean, message: string) =>
    assertThrows(() => permRange(args, prefix, fromKey), { message, exitCode: 128 });
  refused(["k"], true, true, "--from-key and --prefix flags are mutually exclusive");
  refused([""], true, true, "--from-key and --prefix flags are mutually exclusive");
  refused(["a", "b"], true, true, "unexpected endkey argument with --prefix flag");
  refused(["a", "b"], true, false, "unexpected endkey argument with --prefix flag");
  refused(["a", "b"], false, true, "unexpected endkey argument with --from-key flag");
});

Deno.test("permissionType takes read, write, readwrite in any case", () => {
  assertEquals(
    ["read", "Write", "READWRITE"].map(permissionType),
    ["READ", "WRITE", "READWRITE"],
  );
  assertThrows(() => permissionType("rw"), { message: "invalid permission type: rw" });
});

Deno.test("credentialsFromFlags: --user name:password, with --password, or asked for once", async () => {
  const never = () => Promise.reject(new Error("not asked"));
  assertEquals(credentialsFromFlags("", "pw", never), undefined);
  assertEquals(credentialsFromFlags("root:a:b", "", never), { username: "root", password: "a:b" });
  assertEquals(credentialsFromFlags("root:", "", never), { username: "root", password: "" });
  assertEquals(credentialsFromFlags("a:b", "pw", never), { username: "a:b", password: "pw" });
  let asked = 0;
  const creds = credentialsFromFlags("root", "", () => Promise.resolve(`pw${++asked}`));
  assertEquals(creds?.username, "root");
  const ask = creds?.password as () => Promise<string>;
  assertEquals([await ask(), await ask(), asked], ["pw1", "pw1", 1]);
});

const reader = (s: string) => new StdinReader(() => new Blob([s]).stream());

Deno.test("StdinReader: lines as speakeasy reads them, words as fmt.Scanf", async () => {
  const r = reader("one\r\ntwo\n\nlast");
  assertEquals(
    [await r.readLine(), await r.readLine(), await r.readLine(), await r.readLine()],
    ["one", "two", "", "last"],
  );
  assertEquals(await r.readLine(), "", "at the end of input");
  const w = reader("  two words\nnext\n\n");
  assertEquals(await w.scanWord(), "two");
  assertEquals(await w.readLine(), "words", "the space after the word was consumed");
  assertEquals(await w.scanWord(), "next");
  assertEquals(await w.scanWord(), "", "a newline before any word");
  assertEquals(await w.scanWord(), "", "the end of input");
});

Deno.test("StdinReader refuses a password line over CTL_PASSWORD_MAX_BYTES", async () => {
  const long = "x".repeat(CTL_PASSWORD_MAX_BYTES + 1);
  let message = "";
  await reader(long + "\n").readLine().catch((e) => message = e.message);
  assertEquals(message, `password longer than ${CTL_PASSWORD_MAX_BYTES} bytes`);
  assertEquals(
    await reader("x".repeat(CTL_PASSWORD_MAX_BYTES) + "\n").readLine().then((s) => s.length),
    CTL_PASSWORD_MAX_BYTES,
  );
});

/** ctl against an endpoint nothing listens on: these must fail before any request. */
const NOWHERE = ["--endpoints", "127.0.0.1:1", "--command-timeout", "200ms"];

Deno.test("argument errors exit 128 with etcdctl's text before any request", async () => {
  for (
    const [args, message] of [
      ["user add", "user add command requires user name as its argument"],
      ["user add :pw", "empty user name is not allowed"],
      ["user delete", "user delete command requires user name as its argument"],
      ["user get a b", "user get command requires user name as its argument"],
      ["user list x", "user list command requires no arguments"],
      ["user passwd", "user passwd command requires user name as its argument"],
      ["user grant-role a", "user grant command requires user name and role name as its argument"],
      ["user revoke-role a", "user revoke-role requires user name and role name as its argument"],
      ["role add", "role add command requires role name as its argument"],
      ["role delete", "role delete command requires role name as its argument"],
      ["role get a b", "role get command requires role name as its argument"],
      ["role list x", "role list command requires no arguments"],
      [
        "role grant-permission r read",
        "role grant command requires role name, permission type, and key [endkey] as its argument",
      ],
      ["role grant-permission r rw k", "invalid permission type: rw"],
      [
        "role revoke-permission r",
        "role revoke-permission command requires role name and key [endkey] as its argument",
      ],
      [
        "role revoke-permission r a b --from-key",
        "unexpected endkey argument with --from-key flag",
      ],
      ["auth enable x", "auth enable command does not accept any arguments"],
      ["auth disable x", "auth disable command does not accept any arguments"],
    ]
  ) {
    const { io, out, err } = memoryIO();
    const code = await runCtl([...NOWHERE, ...args.split(" ")], io);
    assertEquals([code, out(), err()], [128, "", `Error: ${message}\n`], args);
  }
});

Deno.test("user add and passwd ask twice, as etcdctl, and refuse empty or different passwords", async () => {
  for (
    const [args, stdin, message] of [
      ["user add bar", "a\nb\n", "given passwords are different"],
      ["user add bar", "\n", "empty password"],
      ["user add bar", "", "empty password"],
      ["user passwd bar", "a\n", "given passwords are different"],
    ]
  ) {
    const { io, out, err } = memoryIO(stdin);
    const code = await runCtl([...NOWHERE, ...args.split(" ")], io);
    const first = "Password of bar: \n";
    const prompts = message === "empty password"
      ? first
      : first + "Type password of bar again for confirmation: \n";
    assertEquals([code, out(), err()], [128, prompts, `Error: ${message}\n`], `${args} ${stdin}`);
  }
});

Deno.test("user and role without a subcommand print their help", async () => {
  for (const group of ["user", "role", "auth"]) {
    const { io, out } = memoryIO();
    assertEquals(await runCtl([group], io), 0);
    assertEquals(out().split("\n").slice(0, 2), [
      "NAME:",
      `\t${group} - ${
        {
          user: "User related commands",
          role: "Role related commands",
          auth: "Enable or disable authentication",
        }[group]
      }`,
    ]);
  }
});
