import assert from "node:assert/strict";
import { Client } from "../../mod.ts";
import { type CertFiles, makeCa, makeCert, tlsClient } from "../certs.ts";
import {
  cairnArgs,
  freePort,
  HAVE_ETCD,
  runCairnToExit,
  type ServerProcess,
  startCairnAt,
  startEtcdAt,
} from "../servers.ts";
import { CTL_COMMAND, etcdctl, runCli } from "./etcdctl_diff.ts";

const b64 = (s: string) => btoa(s);
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** A CA, a server and a client certificate it signs, and a client certificate of another CA. */
interface Pki {
  dir: string;
  ca: CertFiles;
  server: CertFiles;
  client: CertFiles;
  stranger: CertFiles;
}

let pki: Promise<Pki> | undefined;
function certificates(): Promise<Pki> {
  return pki ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "cairn-tls-certs-" });
    const ca = await makeCa(dir, "ca");
    const other = await makeCa(dir, "other-ca");
    return {
      dir,
      ca,
      server: await makeCert(dir, ca, "server"),
      client: await makeCert(dir, ca, "client"),
      stranger: await makeCert(dir, other, "stranger"),
    };
  })();
}

/** The server flags for `p`'s server certificate, client certificates required. */
const serverTls = (p: Pki) => [
  "--cert-file",
  p.server.cert,
  "--key-file",
  p.server.key,
  "--trusted-ca-file",
  p.ca.cert,
  "--client-cert-auth",
];

/** etcdctl's TLS flags for `identity` (none: the CA only). */
const ctlTls = (p: Pki, identity?: CertFiles) => [
  "--cacert",
  p.ca.cert,
  ...(identity === undefined ? [] : ["--cert", identity.cert, "--key", identity.key]),
];

/** Whether a fetch of `url` with `client` fails (at the connection: no response). */
async function refused(url: string, client?: Deno.HttpClient): Promise<boolean> {
  try {
    const res = await fetch(url, {
      method: "POST",
      body: JSON.stringify({ key: b64("foo") }),
      ...(client === undefined ? {} : { client }),
    });
    await res.body?.cancel();
    return false;
  } catch {
    return true;
  } finally {
    client?.close();
  }
}

async function withCairn(
  extra: string[],
  run: (server: ServerProcess, p: Pki) => Promise<void>,
  clientCertAuth = true,
): Promise<void> {
  const p = await certificates();
  const dir = await Deno.makeTempDir({ prefix: "cairn-tls-" });
  const health = tlsClient(p.ca, p.client);
  const server = await startCairnAt(
    dir,
    `https://127.0.0.1:${freePort()}`,
    [...serverTls(p).filter((f) => clientCertAuth || f !== "--client-cert-auth"), ...extra],
    health,
  );
  try {
    await run(server, p);
  } finally {
    health.close();
    await server.kill();
    await Deno.remove(dir, { recursive: true });
  }
}

// etcd 3.4 requires client certificates with --trusted-ca-file alone as well.
for (const [workers, auth] of [["2", "--client-cert-auth"], ["0", "--trusted-ca-file alone"]]) {
  Deno.test(`TLS (${workers} HTTP workers, ${auth}): the gateway serves a client certificate the CA signed, refuses others and plain HTTP`, async () => {
    const flags = ["--http-workers", workers];
    await withCairn(flags, async (server, p) => {
      const good = tlsClient(p.ca, p.client);
      try {
        const put = await fetch(`${server.url}/v3/kv/put`, {
          method: "POST",
          body: JSON.stringify({ key: b64("foo"), value: b64("bar") }),
          client: good,
        });
        assert.equal(put.status, 200, await put.clone().text());
        await put.body?.cancel();
        const range = await fetch(`${server.url}/v3/kv/range`, {
          method: "POST",
          body: JSON.stringify({ key: b64("foo") }),
          client: good,
        });
        assert.equal((await range.json()).kvs?.[0]?.value, b64("bar"));
      } finally {
        good.close();
      }
      const range = `${server.url}/v3/kv/range`;
      assert.ok(await refused(range, tlsClient(p.ca)), "served a client without a certificate");
      assert.ok(
        await refused(range, tlsClient(p.ca, p.stranger)),
        "served a certificate of another CA",
      );
      assert.ok(
        await refused(range.replace("https://", "http://")),
        "served plain HTTP on the TLS port",
      );
      // The server keeps serving after the refusals.
      assert.ok(!await refused(range, tlsClient(p.ca, p.client)), "a good client refused");
    }, auth === "--client-cert-auth");
  });
}

Deno.test("TLS: etcdctl 3.4 (gRPC) and cairn's Client and ctl with --cacert/--cert/--key", async () => {
  await withCairn([], async (server, p) => {
    const ep = ["--endpoints", server.endpoint, "--dial-timeout", "1s", "--command-timeout", "2s"];
    const put = await etcdctl([...ep, ...ctlTls(p, p.client), "put", "foo", "bar"]);
    assert.equal(text(put.stdout), "OK\n", put.stderr);
    const get = await etcdctl([...ep, ...ctlTls(p, p.client), "get", "foo"]);
    assert.equal(text(get.stdout), "foo\nbar\n", get.stderr);
    const anonymous = await etcdctl([...ep, ...ctlTls(p), "get", "foo"]);
    assert.notEqual(anonymous.code, 0, "etcdctl without a certificate was served");
    assert.equal(text(anonymous.stdout), "");

    const ctl = await runCli(CTL_COMMAND, [...ep, ...ctlTls(p, p.client), "get", "foo"]);
    assert.equal(text(ctl.stdout), "foo\nbar\n", ctl.stderr);
    const ctlAnonymous = await runCli(CTL_COMMAND, [...ep, ...ctlTls(p), "get", "foo"]);
    assert.notEqual(ctlAnonymous.code, 0, "ctl without a certificate was served");
    assert.match(ctlAnonymous.stderr, /^Error: context deadline exceeded$/m);

    const read = (f: string) => Deno.readTextFileSync(f);
    const client = new Client({
      endpoints: [server.url],
      tls: { caCerts: [read(p.ca.cert)], cert: read(p.client.cert), key: read(p.client.key) },
    });
    try {
      await client.put("k", "v");
      assert.equal(text((await client.get("k")).kvs[0]?.value ?? new Uint8Array()), "v");
    } finally {
      client.close();
    }
    const stranger = new Client({
      endpoints: [server.url],
      timeout: 1_000,
      tls: { caCerts: [read(p.ca.cert)], cert: read(p.stranger.cert), key: read(p.stranger.key) },
    });
    try {
      await assert.rejects(stranger.get("k"));
      await assert.rejects(stranger.put("refused", "v"));
    } finally {
      stranger.close();
    }
    const check = await etcdctl([...ep, ...ctlTls(p, p.client), "get", "refused"]);
    assert.equal(check.code, 0, check.stderr);
    assert.equal(text(check.stdout), "", "a refused client's put was stored");
  });
});

Deno.test({
  name: "TLS: etcdctl gives the same output against etcd 3.4 and cairn with the same certificates",
  ignore: !HAVE_ETCD,
  fn: async () => {
    const p = await certificates();
    const outputs: string[] = [];
    for (const kind of ["etcd", "cairn"] as const) {
      const dir = await Deno.makeTempDir({ prefix: `cairn-tls-${kind}-` });
      const health = tlsClient(p.ca, p.client);
      const url = `https://127.0.0.1:${freePort()}`;
      const server = kind === "etcd"
        ? await startEtcdAt(dir, url, serverTls(p), health)
        : await startCairnAt(dir, url, serverTls(p), health);
      try {
        const ep = [
          "--endpoints",
          server.endpoint,
          "--dial-timeout",
          "1s",
          "--command-timeout",
          "2s",
        ];
        const lines: string[] = [];
        for (
          const args of [
            [...ctlTls(p, p.client), "put", "foo", "bar"],
            [...ctlTls(p, p.client), "get", "foo"],
            [...ctlTls(p, p.client), "get", "foo", "--print-value-only"],
            [...ctlTls(p, p.stranger), "get", "foo"],
            [...ctlTls(p), "get", "foo"],
          ]
        ) {
          const run = await etcdctl([...ep, ...args]);
          lines.push(`$ ${args.slice(-3).join(" ")}`, `exit ${run.code}`, text(run.stdout));
          // The error's last line: the rest names the random balancer target.
          lines.push(run.stderr.trim().split("\n").at(-1) ?? "");
        }
        outputs.push(lines.join("\n"));
      } finally {
        health.close();
        await server.kill();
        await Deno.remove(dir, { recursive: true });
      }
    }
    assert.equal(outputs[1], outputs[0]);
  },
});

Deno.test("TLS: --auto-tls makes a self-signed certificate in the data directory and serves with it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cairn-auto-tls-" });
  const url = `https://127.0.0.1:${freePort()}`;
  const certPath = `${dir}/fixtures/client/cert.pem`;
  // The certificate exists only once the server has started; health is
  // checked with a client that trusts it, made on the first attempt after.
  let trusting: Deno.HttpClient | undefined;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      new URL("../../main.ts", import.meta.url).pathname,
      "--data-dir",
      dir,
      "--listen-client-urls",
      url,
      "--advertise-client-urls",
      url,
      "--auto-tls",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    let body = "";
    for (let i = 0; i < 300 && !body.includes("true"); i++) {
      await new Promise((r) => setTimeout(r, 100));
      try {
        trusting ??= Deno.createHttpClient({ caCerts: [await Deno.readTextFile(certPath)] });
        body = await (await fetch(`${url}/health`, { client: trusting })).text();
      } catch {
        // not yet
      }
    }
    assert.match(body, /"health":"true"/);
    const key = await Deno.stat(`${dir}/fixtures/client/key.pem`);
    assert.equal(key.mode! & 0o777, 0o600);
    assert.ok(await refused(`${url}/v3/kv/range`, Deno.createHttpClient({})), "untrusted served");
  } finally {
    trusting?.close();
    child.kill("SIGKILL");
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("TLS: a member exits with etcd's messages for an https URL without a certificate, or a missing file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cairn-tls-bad-" });
  const url = `https://127.0.0.1:${freePort()}`;
  try {
    const none = await runCairnToExit(cairnArgs(dir, url));
    assert.notEqual(none.code, undefined, "kept running");
    assert.notEqual(none.code, 0);
    assert.ok(
      none.stderr.includes(
        `TLS key/cert (--cert-file, --key-file) must be provided for client url ${url} with HTTPS scheme`,
      ),
      none.stderr,
    );
    const missing = await runCairnToExit(
      cairnArgs(dir, url, [
        "--cert-file",
        "/nonexistent/s.pem",
        "--key-file",
        "/nonexistent/k.pem",
      ]),
    );
    assert.notEqual(missing.code, undefined, "kept running");
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /open \/nonexistent\/s\.pem: no such file or directory/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "TLS: with auth on, a gRPC client's certificate CN is its user, as etcd 3.4 (etcdctl output equal)",
  ignore: !HAVE_ETCD,
  fn: async () => {
    const p = await certificates();
    const outputs: string[] = [];
    for (const kind of ["etcd", "cairn"] as const) {
      const dir = await Deno.makeTempDir({ prefix: `cairn-tls-cn-${kind}-` });
      const health = tlsClient(p.ca, p.client);
      const url = `https://127.0.0.1:${freePort()}`;
      const server = kind === "etcd"
        ? await startEtcdAt(dir, url, serverTls(p), health)
        : await startCairnAt(dir, url, [...serverTls(p), "--bcrypt-cost", "4"], health);
      try {
        const ep = [
          "--endpoints",
          server.endpoint,
          "--dial-timeout",
          "1s",
          "--command-timeout",
          "3s",
        ];
        const lines: string[] = [];
        const root = ["--user", "root:pw"];
        for (
          const args of [
            ["user", "add", "root:pw"],
            ["user", "grant-role", "root", "root"],
            // The client certificate's CN is `client`.
            ["user", "add", "client:secret"],
            ["role", "add", "reader"],
            ["role", "grant-permission", "reader", "read", "a/", "--prefix"],
            ["user", "grant-role", "client", "reader"],
            ["auth", "enable"],
            [...root, "put", "a/1", "v"],
            ["get", "a/1"],
            ["put", "a/2", "v"],
            ["get", "b"],
            [...root, "role", "revoke-permission", "reader", "a/", "--prefix"],
            ["get", "a/1"],
            [...root, "auth", "disable"],
            ["get", "a/1"],
          ]
        ) {
          const run = await etcdctl([...ep, ...ctlTls(p, p.client), ...args]);
          lines.push(`$ ${args.join(" ")}`, `exit ${run.code}`, text(run.stdout));
          lines.push(run.stderr.trim().split("\n").at(-1) ?? "");
        }
        outputs.push(lines.join("\n"));
      } finally {
        health.close();
        await server.kill();
        await Deno.remove(dir, { recursive: true });
      }
    }
    // Refused where the CN's user has no permission, served where it has.
    assert.match(outputs[0], /\$ get b\nexit 1\n\n.*permission denied/);
    assert.match(outputs[0], /\$ get a\/1\nexit 0\na\/1\nv\n/);
    assert.equal(outputs[1], outputs[0]);
  },
});
