/**
 * Client credentials over a scripted fetch: the Auth calls' paths and
 * bodies, lazy authentication, the `Authorization` header on unary calls,
 * streams and watches, one renewal after an answer a new token may cure,
 * a server with auth disabled, and AuthenticationError.
 */
import {
  deepStrictEqual as assertEquals,
  ok as assert,
  rejects as assertRejects,
} from "node:assert/strict";
import { AuthenticationError, Client, EtcdError } from "../../client/mod.ts";

interface Call {
  path: string;
  authorization: string | null;
  body: unknown;
}

const HEADER = { cluster_id: "1", member_id: "2", revision: "7", raft_term: "3" };
const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
const failure = (message: string, code: number, status: number) =>
  json({ error: message, message, code }, status);

/** A fetch that records each call's path, Authorization header and body. */
function fakeFetch(script: (path: string, auth: string | null, n: number) => Response) {
  const calls: Call[] = [];
  const f = (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const path = new URL(String(input)).pathname;
    const authorization = new Headers(init?.headers).get("authorization");
    calls.push({ path, authorization, body: init?.body ? JSON.parse(String(init.body)) : {} });
    return Promise.resolve(script(path, authorization, calls.length));
  };
  return { fetch: f as typeof fetch, calls };
}

/** Authenticate answers token `tok<n>` (n counts authentications); other calls succeed. */
function tokenServer(
  other: (path: string, auth: string | null) => Response | undefined = () => undefined,
) {
  let issued = 0;
  return fakeFetch((path, auth) => {
    if (path === "/v3/auth/authenticate") return json({ header: HEADER, token: `tok${++issued}` });
    return other(path, auth) ?? json({ header: HEADER, kvs: [], count: "0" });
  });
}

Deno.test("Auth calls go to etcd's gateway paths with etcd's field names", async () => {
  const { fetch, calls } = fakeFetch(() => json({ header: HEADER }));
  const c = new Client({ endpoints: ["a:1"], fetch });
  const enc = new TextEncoder();
  await c.userAdd({ name: "u", password: "p", options: { no_password: true } });
  await c.userGet("u");
  await c.userList();
  await c.userDelete("u");
  await c.userChangePassword({ name: "u", password: "q" });
  await c.userGrantRole({ user: "u", role: "r" });
  await c.userRevokeRole({ name: "u", role: "r" });
  await c.roleAdd("r");
  await c.roleGet("r");
  await c.roleList();
  await c.roleDelete("r");
  await c.roleGrantPermission({
    name: "r",
    perm: { permType: "READWRITE", key: enc.encode("a"), range_end: enc.encode("b") },
  });
  await c.roleRevokePermission({ role: "r", key: enc.encode("a"), range_end: new Uint8Array() });
  await c.authEnable();
  await c.authDisable();
  await c.authenticate({ name: "u", password: "p" });
  assertEquals(calls.map((x) => [x.path, x.body]), [
    ["/v3/auth/user/add", { name: "u", password: "p", options: { no_password: true } }],
    ["/v3/auth/user/get", { name: "u" }],
    ["/v3/auth/user/list", {}],
    ["/v3/auth/user/delete", { name: "u" }],
    ["/v3/auth/user/changepw", { name: "u", password: "q" }],
    ["/v3/auth/user/grant", { user: "u", role: "r" }],
    ["/v3/auth/user/revoke", { name: "u", role: "r" }],
    ["/v3/auth/role/add", { name: "r" }],
    ["/v3/auth/role/get", { role: "r" }],
    ["/v3/auth/role/list", {}],
    ["/v3/auth/role/delete", { role: "r" }],
    ["/v3/auth/role/grant", {
      name: "r",
      perm: { permType: "READWRITE", key: "YQ==", range_end: "Yg==" },
    }],
    ["/v3/auth/role/revoke", { role: "r", key: "YQ==" }],
    ["/v3/auth/enable", {}],
    ["/v3/auth/disable", {}],
    ["/v3/auth/authenticate", { name: "u", password: "p" }],
  ]);
  assert(calls.every((x) => x.authorization === null), "no credentials: no token");
});

Deno.test("credentials: one Authenticate on first use, then the token on every request", async () => {
  const { fetch, calls } = tokenServer();
  const c = new Client({ endpoints: ["a:1"], fetch, username: "root", password: "pw" });
  assertEquals(calls.length, 0);
  await Promise.all([c.get("k"), c.get("k2"), c.put("k", "v")]);
  await c.userList();
  assertEquals(calls.filter((x) => x.path === "/v3/auth/authenticate").length, 1);
  assertEquals(calls[0], {
    path: "/v3/auth/authenticate",
    authorization: null,
    body: { name: "root", password: "pw" },
  });
  assertEquals(calls.slice(1).map((x) => x.authorization), ["tok1", "tok1", "tok1", "tok1"]);
});

Deno.test("an invalid or old token is renewed once and the request sent again", async () => {
  for (
    const [message, code, status] of [
      ["etcdserver: invalid auth token", 16, 401],
      ["etcdserver: revision of auth store is old", 3, 400],
      ["etcdserver: user name is empty", 3, 400],
    ] as const
  ) {
    const { fetch, calls } = tokenServer((path, auth) =>
      path === "/v3/kv/put" && auth === "tok1" ? failure(message, code, status) : undefined
    );
    const c = new Client({ endpoints: ["a:1"], fetch, username: "u", password: "p" });
    await c.put("k", "v");
    assertEquals(
      calls.map((x) => `${x.path} ${x.authorization}`),
      [
        "/v3/auth/authenticate null",
        "/v3/kv/put tok1",
        "/v3/auth/authenticate null",
        "/v3/kv/put tok2",
      ],
      message,
    );
  }
});

Deno.test("a token refused twice fails the call after one renewal", async () => {
  const { fetch, calls } = tokenServer((path) =>
    path === "/v3/kv/range" ? failure("etcdserver: invalid auth token", 16, 401) : undefined
  );
  const c = new Client({ endpoints: ["a:1"], fetch, username: "u", password: "p" });
  await assertRejects(c.get("k"), { message: "etcdserver: invalid auth token" });
  assertEquals(calls.filter((x) => x.path === "/v3/auth/authenticate").length, 2);
  assertEquals(calls.filter((x) => x.path === "/v3/kv/range").length, 2);
});

Deno.test("without credentials an auth error is the call's error, not retried", async () => {
  const { fetch, calls } = fakeFetch(() => failure("etcdserver: user name is empty", 3, 400));
  const c = new Client({ endpoints: ["a:1"], fetch });
  await assertRejects(c.get("k"), { message: "etcdserver: user name is empty" });
  assertEquals(calls.length, 1);
});

Deno.test("auth disabled: no token until the server asks for a user", async () => {
  let enabled = false;
  let issued = 0;
  const { fetch, calls } = fakeFetch((path, auth) => {
    if (path === "/v3/auth/authenticate") {
      return enabled
        ? json({ header: HEADER, token: `tok${++issued}` })
        : failure("etcdserver: authentication is not enabled", 9, 412);
    }
    if (enabled && auth === null) return failure("etcdserver: user name is empty", 3, 400);
    return json({ header: HEADER });
  });
  const c = new Client({ endpoints: ["a:1"], fetch, username: "u", password: "p" });
  await c.get("k");
  await c.get("k");
  enabled = true;
  await c.get("k");
  await c.get("k");
  assertEquals(calls.map((x) => `${x.path} ${x.authorization}`), [
    "/v3/auth/authenticate null",
    "/v3/kv/range null",
    "/v3/kv/range null",
    "/v3/kv/range null",
    "/v3/auth/authenticate null",
    "/v3/kv/range tok1",
    "/v3/kv/range tok1",
  ]);
});

Deno.test("a refused Authenticate rejects the call with AuthenticationError", async () => {
  const { fetch, calls } = fakeFetch(() =>
    failure("etcdserver: authentication failed, invalid user ID or password", 3, 400)
  );
  const c = new Client({ endpoints: ["a:1"], fetch, username: "u", password: "bad" });
  const err = await c.get("k").then(() => undefined, (e) => e);
  assert(err instanceof AuthenticationError);
  assert(err instanceof EtcdError);
  assertEquals([err.message, err.code], [
    "etcdserver: authentication failed, invalid user ID or password",
    3,
  ]);
  assertEquals(calls.map((x) => x.path), ["/v3/auth/authenticate"]);
});

Deno.test("a password function is asked once; an empty password or user means no auth", async () => {
  let asked = 0;
  const ask = () => {
    asked++;
    return Promise.resolve("pw");
  };
  const { fetch, calls } = tokenServer();
  const c = new Client({ endpoints: ["a:1"], fetch, username: "u", password: ask });
  await Promise.all([c.get("a"), c.get("b")]);
  await c.get("c");
  assertEquals(asked, 1);
  assertEquals(calls[0].body, { name: "u", password: "pw" });

  for (
    const opts of [
      { username: "u", password: "" },
      { username: "", password: "pw" },
      { username: "u", password: () => Promise.resolve("") },
    ]
  ) {
    const s = tokenServer();
    await new Client({ endpoints: ["a:1"], fetch: s.fetch, ...opts }).get("k");
    assertEquals(s.calls.map((x) => `${x.path} ${x.authorization}`), ["/v3/kv/range null"]);
  }
});

Deno.test("a watch sends the token and renews it once when the server refuses it", async () => {
  let issued = 0;
  const { fetch, calls } = fakeFetch((path, auth) => {
    if (path === "/v3/auth/authenticate") return json({ header: HEADER, token: `tok${++issued}` });
    if (auth === "tok1") return failure("etcdserver: invalid auth token", 16, 401);
    const created = JSON.stringify({ result: { header: HEADER, created: true } }) + "\n";
    return new Response(created, { status: 200 });
  });
  const c = new Client({ endpoints: ["a:1"], fetch, username: "u", password: "p" });
  const abort = new AbortController();
  const w = c.watch("k", { signal: abort.signal });
  await w.created;
  abort.abort();
  assertEquals(calls.map((x) => `${x.path} ${x.authorization}`), [
    "/v3/auth/authenticate null",
    "/v3/watch tok1",
    "/v3/auth/authenticate null",
    "/v3/watch tok2",
  ]);
});
