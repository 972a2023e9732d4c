/**
 * `jwt` auth tokens (core/auth/jwt_token.ts, server/config.ts's loader):
 * keys made with openssl in a temp dir; round trips for every family;
 * tampered, foreign, expired, malformed and wrong-algorithm tokens refused;
 * a verify-only member; etcd's key errors. Then against real etcd 3.4 with
 * the same keys: the header and claims of its tokens, tokens crossing both
 * ways (cairn reads etcd's, etcd accepts cairn's), the verify-only error and
 * the start-up errors for bad keys.
 */
import { deepStrictEqual as assertEquals, ok as assert, rejects, throws } from "node:assert/strict";
import { Buffer } from "node:buffer";
import { type JwtSignMethod, JwtTokens } from "../../core/auth/jwt_token.ts";
import { Errors } from "../../core/errors.ts";
import { ConfigError, loadJwtTokens, parseAuthToken } from "../../server/config.ts";
import { freePort, HAVE_ETCD, runCairnToExit, startEtcd } from "../servers.ts";
import { openssl } from "../certs.ts";

/** Key files made once for every test in this file. */
interface Keys {
  dir: string;
  /** Path of a file in `dir`. */
  path(name: string): string;
  /** Contents of a file in `dir`. */
  read(name: string): Uint8Array;
}

let keysMade: Promise<Keys> | undefined;

/**
 * RSA 2048 (PKCS #8 and PKCS #1 forms, public key, certificate), a second
 * RSA pair, EC P-256 (SEC 1 and PKCS #8, public key), EC P-384, a non-PEM file.
 */
function keys(): Promise<Keys> {
  keysMade ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "cairn-jwt-" });
    globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
    const run = (args: string) => openssl(args.split(" "), dir);
    await run("genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.pem");
    await run("pkey -in rsa.pem -pubout -out rsa.pub");
    await run("rsa -in rsa.pem -traditional -out rsa1.pem");
    await run("req -x509 -key rsa.pem -out rsa.crt -days 1 -subj /CN=jwt");
    await run("genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out other.pem");
    await run("ecparam -name prime256v1 -genkey -noout -out ec.pem");
    await run("pkey -in ec.pem -pubout -out ec.pub");
    await run("pkcs8 -topk8 -nocrypt -in ec.pem -out ec8.pem");
    await run("ecparam -name secp384r1 -genkey -noout -out ec384.pem");
    await run("pkey -in ec384.pem -pubout -out ec384.pub");
    await Deno.writeTextFile(`${dir}/junk.txt`, "not a key\n");
    await Deno.writeTextFile(`${dir}/secret`, "a shared secret\n");
    return {
      dir,
      path: (name: string) => `${dir}/${name}`,
      read: (name: string) => Deno.readFileSync(`${dir}/${name}`),
    };
  })();
  return keysMade;
}

/** A clock the test moves, in ms. */
function clock(start: number): { now: () => number; set(ms: number): void } {
  let t = start;
  return { now: () => t, set: (ms: number) => void (t = ms) };
}

const T0 = 1_700_000_000_500;

async function tokensFor(
  signMethod: JwtSignMethod,
  files: { priv?: string; pub?: string },
  ttlMs = 300_000,
  now: () => number = () => T0,
): Promise<JwtTokens> {
  const k = await keys();
  return await JwtTokens.create({
    signMethod,
    privateKey: files.priv === undefined ? undefined : k.read(files.priv),
    publicKey: files.pub === undefined ? undefined : k.read(files.pub),
    ttlMs,
    now,
  });
}

/** The JSON text of a token's segment `i` (0 header, 1 payload). */
const segment = (token: string, i: number) =>
  Buffer.from(token.split(".")[i], "base64url").toString("utf8");

/** `token` with segment `i` replaced by the base64url of `json`. */
const withSegment = (token: string, i: number, json: string) => {
  const parts = token.split(".");
  parts[i] = Buffer.from(json).toString("base64url");
  return parts.join(".");
};

Deno.test("jwt: assign then info round-trips for RS, PS, ES and HS methods, any key form", async () => {
  const cases: [JwtSignMethod, string][] = [
    ["RS256", "rsa.pem"],
    ["RS512", "rsa1.pem"],
    ["PS256", "rsa.pem"],
    ["PS384", "rsa1.pem"],
    ["ES256", "ec.pem"],
    ["ES256", "ec8.pem"],
    ["ES384", "ec384.pem"],
    ["HS256", "secret"],
    ["HS512", "secret"],
  ];
  for (const [method, priv] of cases) {
    const tokens = await tokensFor(method, { priv });
    assert(!tokens.verifyOnly, `${method} ${priv} signs`);
    const token = await tokens.assign({ user: "alice", revision: 7 });
    assertEquals(await tokens.info(token), { user: "alice", revision: 7 }, `${method} ${priv}`);
    assertEquals(JSON.parse(segment(token, 0)), { alg: method, typ: "JWT" });
  }
});

Deno.test("jwt: header and claims in etcd's form, exp in whole seconds after the TTL", async () => {
  const tokens = await tokensFor("RS256", { priv: "rsa.pem", pub: "rsa.pub" }, 5_000);
  const token = await tokens.assign({ user: "a<b>&c", revision: 12 });
  assertEquals(segment(token, 0), '{"alg":"RS256","typ":"JWT"}');
  const exp = Math.floor((T0 + 5_000) / 1000);
  // Go's json.Marshal: keys sorted, <, > and & escaped.
  assertEquals(
    segment(token, 1),
    `{"exp":${exp},"revision":12,"username":"a\\u003cb\\u003e\\u0026c"}`,
  );
  assertEquals(await tokens.info(token), { user: "a<b>&c", revision: 12 });
});

Deno.test("jwt: a token expires after the second of its exp, by the injected clock", async () => {
  const c = clock(T0);
  const tokens = await tokensFor("ES256", { priv: "ec.pem" }, 5_000, c.now);
  const token = await tokens.assign({ user: "bob", revision: 1 });
  const exp = Math.floor((T0 + 5_000) / 1000);
  c.set(exp * 1000 + 999); // still the second of exp: golang-jwt takes now <= exp
  assertEquals(await tokens.info(token), { user: "bob", revision: 1 });
  c.set((exp + 1) * 1000);
  assertEquals(await tokens.info(token), undefined);
  // A TTL of 0 (etcd takes `ttl=0s`) lasts to the end of the issuing second;
  // a negative one is expired at once.
  const zero = await tokensFor("ES256", { priv: "ec.pem" }, 0, c.now);
  assertEquals(await zero.info(await zero.assign({ user: "z", revision: 1 })), {
    user: "z",
    revision: 1,
  });
  const negative = await tokensFor("ES256", { priv: "ec.pem" }, -2_000, c.now);
  assertEquals(await negative.info(await negative.assign({ user: "n", revision: 1 })), undefined);
});

Deno.test("jwt: tampered, foreign, malformed and wrong-algorithm tokens are refused", async () => {
  const tokens = await tokensFor("RS256", { priv: "rsa.pem" });
  const token = await tokens.assign({ user: "carol", revision: 3 });
  assert((await tokens.info(token)) !== undefined);
  // Payload changed, signature kept.
  const payload = segment(token, 1).replace('"revision":3', '"revision":4');
  assertEquals(await tokens.info(withSegment(token, 1, payload)), undefined);
  const asRoot = segment(token, 1).replace('"carol"', '"root"');
  assertEquals(await tokens.info(withSegment(token, 1, asRoot)), undefined);
  // Signature changed.
  const parts = token.split(".");
  const sig = Buffer.from(parts[2], "base64url");
  sig[10] ^= 1;
  parts[2] = sig.toString("base64url");
  assertEquals(await tokens.info(parts.join(".")), undefined);
  // Signed by another key.
  const other = await tokensFor("RS256", { priv: "other.pem" });
  assertEquals(await tokens.info(await other.assign({ user: "carol", revision: 3 })), undefined);
  // The same key under another method, and an unsigned token.
  const ps = await tokensFor("PS256", { priv: "rsa.pem" });
  assertEquals(await tokens.info(await ps.assign({ user: "carol", revision: 3 })), undefined);
  const none = withSegment(token, 0, '{"alg":"none","typ":"JWT"}').split(".");
  assertEquals(await tokens.info(`${none[0]}.${none[1]}.`), undefined);
  // Malformed.
  for (const bad of ["", "abc", "a.b", "a.b.c", `${token}.x`, token.slice(0, -3), "simple.42"]) {
    assertEquals(await tokens.info(bad), undefined, JSON.stringify(bad));
  }
  // Signed, but without etcd's claims.
  const hs = await tokensFor("HS256", { priv: "secret" });
  const good = await hs.assign({ user: "d", revision: 1 });
  assertEquals(await hs.info(good), { user: "d", revision: 1 });
  const { CompactSign } = await import("jose");
  const k = await keys();
  const signed = (claims: string) =>
    new CompactSign(new TextEncoder().encode(claims))
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .sign(k.read("secret"));
  assertEquals(await hs.info(await signed('{"revision":1}')), undefined);
  assertEquals(await hs.info(await signed('{"username":"d","revision":"1"}')), undefined);
  assertEquals(await hs.info(await signed("[1]")), undefined);
  assertEquals(
    await hs.info(await signed('{"username":"d","revision":1,"nbf":9999999999}')),
    undefined,
  );
  // Without exp it never expires, as golang-jwt v3 checks exp only when present.
  assertEquals(await hs.info(await signed('{"username":"d","revision":2}')), {
    user: "d",
    revision: 2,
  });
});

Deno.test("jwt: a member with only the public key verifies but cannot sign", async () => {
  const signer = await tokensFor("RS256", { priv: "rsa.pem" });
  const token = await signer.assign({ user: "erin", revision: 5 });
  for (const pub of ["rsa.pub", "rsa.crt"]) {
    const verifier = await tokensFor("RS256", { pub });
    assert(verifier.verifyOnly);
    assertEquals(await verifier.info(token), { user: "erin", revision: 5 }, pub);
    await rejects(
      verifier.assign({ user: "erin", revision: 5 }),
      (e: Error) => e.message === Errors.AuthVerifyOnly().message,
    );
  }
  const ecSigner = await tokensFor("ES256", { priv: "ec.pem" });
  const ecVerifier = await tokensFor("ES256", { pub: "ec.pub" });
  assertEquals(await ecVerifier.info(await ecSigner.assign({ user: "f", revision: 1 })), {
    user: "f",
    revision: 1,
  });
  // JWTs are stateless: invalidation keeps them valid until exp, as etcd's.
  signer.invalidateUser("erin");
  signer.clear();
  assertEquals(await signer.info(token), { user: "erin", revision: 5 });
});

Deno.test("jwt: an ES method with a key on another curve starts but cannot sign", async () => {
  const tokens = await tokensFor("ES384", { priv: "ec.pem" });
  await rejects(
    tokens.assign({ user: "g", revision: 1 }),
    (e: Error) => e.message === "key is invalid",
  );
  const p256 = await tokensFor("ES256", { priv: "ec.pem" });
  assertEquals(await tokens.info(await p256.assign({ user: "g", revision: 1 })), undefined);
});

/** The message `loadJwtTokens` refuses `--auth-token raw` with (files relative to the key dir). */
async function loadError(raw: string): Promise<string> {
  const k = await keys();
  try {
    await loadJwtTokens(parseAuthToken(raw.replaceAll("@", `${k.dir}/`)) as never);
  } catch (err) {
    assert(err instanceof ConfigError, String(err));
    return err.message;
  }
  return "started";
}

/** Bad --auth-token values and the error etcd 3.4.23 exits with (checked against etcd below). */
const START_ERRORS: [string, string][] = [
  ["jwt,sign-method=RS256", "auth: missing key data"],
  ["jwt,sign-method=HS256,pub-key=@rsa.pub", "auth: missing key data"],
  ["jwt,sign-method=RS256,priv-key=@nofile", "auth: invalid auth options"],
  ["jwt,sign-method=RS256,priv-key=@ec8.pem", "key is not a valid RSA private key"],
  [
    "jwt,sign-method=RS256,priv-key=@ec.pem",
    "x509: failed to parse private key (use ParseECPrivateKey instead for this key format)",
  ],
  [
    "jwt,sign-method=ES256,priv-key=@rsa1.pem",
    "x509: failed to parse private key (use ParsePKCS1PrivateKey instead for this key format)",
  ],
  ["jwt,sign-method=ES256,priv-key=@rsa.pem", "key is not a valid ECDSA private key"],
  [
    "jwt,sign-method=RS256,priv-key=@junk.txt",
    "invalid key: Key must be a PEM encoded PKCS1 or PKCS8 key",
  ],
  ["jwt,sign-method=RS256,pub-key=@ec.pub", "key is not a valid RSA public key"],
  ["jwt,sign-method=ES256,pub-key=@rsa.pub", "key is not a valid ECDSA public key"],
  ["jwt,sign-method=RS256,pub-key=@rsa.pem", "x509: malformed tbs certificate"],
  [
    "jwt,sign-method=ES256,priv-key=@ec.pem,pub-key=@ec384.pub",
    "auth: public and private keys don't match",
  ],
  ["jwt,sign-method=RS256,priv-key=@rsa.pem,pub-key=@other.pem", "x509: malformed tbs certificate"],
];

Deno.test("jwt: keys etcd refuses at start are refused with etcd's text", async () => {
  for (const [raw, message] of START_ERRORS) assertEquals(await loadError(raw), message, raw);
  // Both keys of one pair, or a pub-key etcd's rule does not take for a mismatch.
  assertEquals(
    await loadError("jwt,sign-method=RS256,priv-key=@rsa.pem,pub-key=@rsa.crt"),
    "started",
  );
  assertEquals(
    await loadError("jwt,sign-method=RS256,priv-key=@rsa1.pem,pub-key=@rsa.pub"),
    "started",
  );
});

Deno.test({
  name:
    "jwt: cairn exits at start with etcd's error for a bad key, after its unknown-option warning",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const k = await keys();
    const dir = await Deno.makeTempDir();
    try {
      const peer = `http://127.0.0.1:${freePort()}`;
      const exited = await runCairnToExit([
        "--data-dir",
        dir,
        "--listen-client-urls",
        `http://127.0.0.1:${freePort()}`,
        "--listen-peer-urls",
        peer,
        "--initial-advertise-peer-urls",
        peer,
        "--auth-token",
        `jwt,sign-method=ES256,priv-key=${k.path("rsa.pem")},foo=1`,
      ]);
      assertEquals(exited.code, 1, exited.stderr);
      const lines = exited.stderr.trim().split("\n").map((l) => JSON.parse(l));
      const warn = lines.find((l) => l.msg === "unknown JWT options");
      assertEquals(warn?.keys, ["foo"]);
      const fatal = lines.find((l) => l.level === "fatal");
      assertEquals(fatal?.error, "key is not a valid ECDSA private key");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** An etcd process's answers through the JSON gateway. */
async function post(url: string, path: string, body: unknown, token?: string) {
  const res = await fetch(`${url}${path}`, {
    method: "POST",
    body: JSON.stringify(body),
    headers: token === undefined ? {} : { Authorization: token },
  });
  return { status: res.status, json: await res.json() };
}

/** Add root with the root role and enable auth on etcd at `url`. */
async function enableAuth(url: string): Promise<void> {
  for (
    const [path, body] of [
      ["/v3/auth/user/add", { name: "root", password: "pw" }],
      ["/v3/auth/user/grant", { user: "root", role: "root" }],
      ["/v3/auth/enable", {}],
    ] as const
  ) {
    const { status, json } = await post(url, path, body);
    assertEquals(status, 200, `${path}: ${JSON.stringify(json)}`);
  }
}

Deno.test({
  name: "jwt: etcd 3.4's tokens have cairn's header and claims, and cross both ways",
  ignore: !HAVE_ETCD,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const k = await keys();
    const raw = `jwt,pub-key=${k.path("rsa.pub")},priv-key=${k.path("rsa.pem")},sign-method=RS256`;
    const dir = await Deno.makeTempDir();
    const etcd = await startEtcd(dir, ["--auth-token", raw]);
    try {
      await enableAuth(etcd.url);
      const auth = await post(etcd.url, "/v3/auth/authenticate", { name: "root", password: "pw" });
      assertEquals(auth.status, 200);
      const etcdToken: string = auth.json.token;
      const config = parseAuthToken(raw);
      assert(config.type === "jwt");
      const cairn = await loadJwtTokens(config);
      const cairnToken = await cairn.assign({ user: "root", revision: 3 });
      const header = (t: string) => JSON.parse(segment(t, 0));
      const claims = (t: string) => JSON.parse(segment(t, 1));
      assertEquals(header(cairnToken), header(etcdToken));
      assertEquals(header(etcdToken), { alg: "RS256", typ: "JWT" });
      assertEquals(Object.keys(claims(cairnToken)), Object.keys(claims(etcdToken)));
      const types = (c: Record<string, unknown>) =>
        Object.fromEntries(Object.entries(c).map(([name, v]) => [name, typeof v]));
      assertEquals(types(claims(cairnToken)), types(claims(etcdToken)));
      // exp: etcd's default TTL of 5 minutes, as cairn's.
      const expDelta = claims(etcdToken).exp - Math.floor(Date.now() / 1000);
      assert(expDelta > 240 && expDelta <= 300, `etcd's exp is ${expDelta}s ahead`);
      // cairn reads etcd's token, and etcd accepts one cairn issued for its auth revision.
      const info = await cairn.info(etcdToken);
      assertEquals(info, { user: "root", revision: claims(etcdToken).revision });
      const own = await cairn.assign(info!);
      const range = await post(etcd.url, "/v3/kv/range", { key: btoa("a") }, own);
      assertEquals(range.status, 200, JSON.stringify(range.json));
      const foreign = await (await tokensFor("RS256", { priv: "other.pem" })).assign(info!);
      const refused = await post(etcd.url, "/v3/kv/range", { key: btoa("a") }, foreign);
      assertEquals([refused.status, refused.json.error], [401, "etcdserver: invalid auth token"]);
    } finally {
      await etcd.kill();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "jwt: a verify-only etcd 3.4 refuses to authenticate with cairn's error",
  ignore: !HAVE_ETCD,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const k = await keys();
    const dir = await Deno.makeTempDir();
    const etcd = await startEtcd(dir, [
      "--auth-token",
      `jwt,pub-key=${k.path("rsa.crt")},sign-method=RS256`,
    ]);
    try {
      await enableAuth(etcd.url);
      const auth = await post(etcd.url, "/v3/auth/authenticate", { name: "root", password: "pw" });
      const expected = Errors.AuthVerifyOnly();
      assertEquals([auth.status, auth.json.error, auth.json.code], [
        expected.httpStatus,
        expected.message,
        expected.code,
      ]);
    } finally {
      await etcd.kill();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** What etcd 3.4 exits with for `--auth-token raw`: the message of its fatal log line. */
async function etcdStartError(raw: string): Promise<string> {
  const dir = await Deno.makeTempDir();
  const client = `http://127.0.0.1:${freePort()}`;
  const peer = `http://127.0.0.1:${freePort()}`;
  try {
    const child = new Deno.Command("etcd", {
      args: [
        "--data-dir",
        dir,
        "--listen-client-urls",
        client,
        "--advertise-client-urls",
        client,
        "--listen-peer-urls",
        peer,
        "--initial-advertise-peer-urls",
        peer,
        "--initial-cluster",
        `default=${peer}`,
        "--auth-token",
        raw,
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    const out = await child.output();
    clearTimeout(timer);
    const fatal = /C \| etcdmain: (.*)/.exec(new TextDecoder().decode(out.stderr));
    return fatal?.[1] ?? `exit ${out.code}`;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "jwt: etcd 3.4 exits with the same errors for the same bad keys",
  ignore: !HAVE_ETCD,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const k = await keys();
    for (const [raw, message] of START_ERRORS) {
      assertEquals(await etcdStartError(raw.replaceAll("@", `${k.dir}/`)), message, raw);
    }
    const refused: [string, string][] = [
      ["jwt", "auth: invalid auth options"],
      ["jwt,sign-method=rs256,priv-key=x", "auth: invalid auth options"],
      ["jwt,sign-method=RS256,ttl=5x", "auth: invalid auth options"],
      ["jwt,sign-method=RS256,ttl=1m,ttl=2m", "auth: invalid auth options"],
      ["simple,ttl", "auth: invalid auth options"],
      ["bogus", "auth: invalid auth options"],
      ["jwt,sign-method=none", "unsupported signing method: *jwt.signingMethodNone"],
    ];
    for (const [raw, message] of refused) {
      assertEquals(await etcdStartError(raw), message, raw);
      throws(
        () => parseAuthToken(raw),
        (e: Error) => e instanceof ConfigError && e.message === message,
      );
    }
  },
});
