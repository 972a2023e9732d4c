/**
 * TLS between members (--peer-* flags), --cipher-suites and certificate
 * reload, on real processes: a 3-member cluster over https peer URLs with
 * --peer-client-cert-auth, a member with another CA's certificate that
 * cannot join, --peer-auto-tls, cipher suites probed with `openssl s_client`
 * against etcd 3.4 and cairn alike, replaced certificate files seen by new
 * connections, and etcd's start-up errors for bad TLS flags.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type CertFiles, makeCa, makeCert, makeCrl, tlsClient } from "../certs.ts";
import {
  cairnArgs,
  freePort,
  HAVE_ETCD,
  runCairnToExit,
  startCairnAt,
  startEtcdAt,
} from "../servers.ts";
import { CIPHER_SUITES } from "../../server/cipher_suites.ts";
import { TLS_RELOAD_CHECK_MS } from "../../core/limits.ts";
import { type Cluster, get, put, startCluster } from "./cluster_harness.ts";

/** Attempts to see a replaced certificate, each after a reload interval: bounded, not timed. */
const RELOAD_ATTEMPTS = 20;
const OPENSSL_TIMEOUT_MS = 10_000;

interface Pki {
  dir: string;
  ca: CertFiles;
  peer: CertFiles;
  /** Signed by `ca`, another subject: what replaces `peer` on disk. */
  renewed: CertFiles;
  /** Signed by another CA. */
  stranger: CertFiles;
  otherCa: CertFiles;
}

let pki: Promise<Pki> | undefined;
function certificates(): Promise<Pki> {
  return pki ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "cairn-peer-tls-certs-" });
    const ca = await makeCa(dir, "ca");
    const otherCa = await makeCa(dir, "other-ca");
    return {
      dir,
      ca,
      peer: await makeCert(dir, ca, "peer"),
      renewed: await makeCert(dir, ca, "renewed"),
      stranger: await makeCert(dir, otherCa, "stranger"),
      otherCa,
    };
  })();
}

/** Copies of `files` at paths of their own (so they can be replaced). */
async function copyOf(files: CertFiles, dir: string, name: string): Promise<CertFiles> {
  const cert = `${dir}/${name}.pem`;
  const key = `${dir}/${name}-key.pem`;
  await Deno.copyFile(files.cert, cert);
  await Deno.copyFile(files.key, key);
  return { cert, key };
}

/** Replace `target`'s files with `source`'s contents (an operator renewing a certificate). */
async function replace(target: CertFiles, source: CertFiles): Promise<void> {
  await Deno.writeTextFile(target.key, await Deno.readTextFile(source.key));
  await Deno.writeTextFile(target.cert, await Deno.readTextFile(source.cert));
}

/** What `openssl s_client` saw of a handshake. */
interface Handshake {
  /** `TLSv1.2`, `TLSv1.3`, or `(NONE)` when it failed. */
  protocol: string;
  /** OpenSSL's name of the cipher, `(NONE)` when it failed. */
  cipher: string;
  /** The server certificate's CN, "" when none was seen. */
  subject: string;
}

/** One handshake with `openssl s_client` against 127.0.0.1:`port`. */
async function handshake(
  port: number,
  ca: CertFiles,
  options: { identity?: CertFiles; tls12?: boolean; cipher?: string } = {},
): Promise<Handshake> {
  const args = ["s_client", "-connect", `127.0.0.1:${port}`, "-CAfile", ca.cert];
  if (options.identity) args.push("-cert", options.identity.cert, "-key", options.identity.key);
  if (options.tls12) args.push("-tls1_2");
  if (options.cipher) args.push("-cipher", options.cipher);
  const out = await new Deno.Command("openssl", {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(OPENSSL_TIMEOUT_MS),
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const m = /^New, (\S+), Cipher is (\S+)/m.exec(text);
  return {
    protocol: m?.[1] ?? "(NONE)",
    cipher: m?.[2] ?? "(NONE)",
    subject: /^subject=.*CN\s*=\s*([^,\n]+)/m.exec(text)?.[1]?.trim() ?? "",
  };
}

/** Handshakes with `port` until the server presents `subject`; the subjects seen. */
async function waitForSubject(
  port: number,
  ca: CertFiles,
  subject: string,
  identity?: CertFiles,
): Promise<string[]> {
  const seen: string[] = [];
  for (let i = 0; i < RELOAD_ATTEMPTS; i++) {
    await new Promise((r) => setTimeout(r, TLS_RELOAD_CHECK_MS / 2));
    const h = await handshake(port, ca, { identity });
    seen.push(h.subject);
    if (h.subject === subject) break;
  }
  return seen;
}

/** The flags of a member whose peer certificate is `identity`, verified against `ca`. */
function peerFlags(identity: CertFiles, ca: CertFiles): string[] {
  return [
    "--peer-cert-file",
    identity.cert,
    "--peer-key-file",
    identity.key,
    "--peer-trusted-ca-file",
    ca.cert,
    "--peer-client-cert-auth",
  ];
}

/** Whether a GET of `url` with `client` fails at the connection. */
async function refused(url: string, client: Deno.HttpClient): Promise<boolean> {
  try {
    const res = await fetch(url, { client });
    await res.body?.cancel();
    return false;
  } catch {
    return true;
  } finally {
    client.close();
  }
}

function grepLogs(cluster: Cluster, pattern: RegExp): boolean {
  return cluster.members.some((m) => {
    try {
      return pattern.test(Deno.readTextFileSync(m.logFile));
    } catch {
      return false;
    }
  });
}

Deno.test("peer TLS: a 3-member cluster with --peer-client-cert-auth serves writes and reads, refuses members without the CA's certificate, and serves renewed certificate files", async () => {
  const p = await certificates();
  const dir = await Deno.makeTempDir({ prefix: "cairn-peer-tls-" });
  const files = await copyOf(p.peer, dir, "member");
  const peerClient = tlsClient(p.ca, p.peer);
  const cluster = await startCluster({
    kind: "cairn",
    size: 3,
    peerScheme: "https",
    flags: peerFlags(files, p.ca),
    peerClient,
  });
  try {
    const [m0, m1, m2] = cluster.members;
    assert.ok(m0.peerUrl.startsWith("https://"));
    await put(m0, "foo", "bar");
    assert.equal(await get(m2, "foo"), "bar");
    await put(m2, "foo", "baz");
    assert.equal(await get(m1, "foo"), "baz");

    // The peer port: the CA's certificate is served; none, or another CA's, is refused.
    const members = `${m1.peerUrl}/members`;
    assert.ok(!await refused(members, tlsClient(p.ca, p.peer)), "a member's certificate refused");
    assert.ok(await refused(members, tlsClient(p.ca)), "served a peer without a certificate");
    assert.ok(
      await refused(members, tlsClient(p.ca, p.stranger)),
      "served a certificate of another CA",
    );
    assert.ok(await refused(members.replace("https:", "http:"), Deno.createHttpClient({})));

    // A member whose certificate another CA signed is added, but cannot join.
    await assert.rejects(
      cluster.join(m0, false, peerFlags(p.stranger, p.otherCa)),
      /exited on restart/,
    );
    assert.ok(grepLogs(cluster, /"msg":"rejected connection"/), "no rejected connection logged");
    await put(m1, "after", "join");
    assert.equal(await get(m0, "after"), "join");

    // Renewed files: new handshakes get the new certificate, without a restart.
    const peerPort = Number(new URL(m0.peerUrl).port);
    assert.equal((await handshake(peerPort, p.ca, { identity: p.peer })).subject, "peer");
    await replace(files, p.renewed);
    const seen = await waitForSubject(peerPort, p.ca, "renewed", p.renewed);
    assert.equal(seen.at(-1), "renewed", `subjects seen: ${seen.join(", ")}`);
    // Members still reach one another (new connections present the renewed one).
    await cluster.isolate(m2);
    await cluster.heal(m2);
    await put(m0, "renewed", "yes");
    assert.equal(await get(m2, "renewed", { serializable: false }), "yes");
  } finally {
    await cluster.close();
    peerClient.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("peer TLS: --peer-auto-tls members make self-signed certificates in <data-dir>/fixtures/peer and form a cluster", async () => {
  const cluster = await startCluster({
    kind: "cairn",
    size: 3,
    peerScheme: "https",
    flags: ["--peer-auto-tls"],
  });
  try {
    const [m0, , m2] = cluster.members;
    await put(m0, "auto", "tls");
    assert.equal(await get(m2, "auto"), "tls");
    const key = await Deno.stat(`${m0.dataDir}/fixtures/peer/key.pem`);
    assert.equal(key.mode! & 0o777, 0o600);
    assert.match(await Deno.readTextFile(`${m0.dataDir}/fixtures/peer/cert.pem`), /BEGIN CERT/);
    // Plain HTTP to an https peer port is not served.
    assert.ok(
      await refused(`${m0.peerUrl.replace("https:", "http:")}/members`, Deno.createHttpClient({})),
    );
  } finally {
    await cluster.close();
  }
});

Deno.test({
  name:
    "--cipher-suites: etcd 3.4 and cairn allow a listed TLS 1.2 suite, refuse a client offering only others, and serve TLS 1.3",
  ignore: !HAVE_ETCD,
  fn: async () => {
    const p = await certificates();
    const outcomes: Record<string, string[]> = {};
    for (const kind of ["etcd", "cairn"] as const) {
      const dir = await Deno.makeTempDir({ prefix: `cairn-ciphers-${kind}-` });
      const port = freePort();
      const url = `https://127.0.0.1:${port}`;
      const flags = [
        "--cert-file",
        p.peer.cert,
        "--key-file",
        p.peer.key,
        "--cipher-suites",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
      ];
      const health = tlsClient(p.ca);
      const server = kind === "etcd"
        ? await startEtcdAt(dir, url, flags, health)
        : await startCairnAt(dir, url, flags, health);
      try {
        const seen: string[] = [];
        for (
          const probe of [
            { tls12: true, cipher: "ECDHE-ECDSA-AES128-GCM-SHA256" },
            { tls12: true, cipher: "ECDHE-ECDSA-AES256-GCM-SHA384" },
            { tls12: true, cipher: "ECDHE-ECDSA-CHACHA20-POLY1305" },
            {},
          ]
        ) {
          const h = await handshake(port, p.ca, probe);
          // Which TLS 1.3 suite is picked is the library's choice (Go's, rustls').
          seen.push(`${probe.cipher ?? "default"}: ${h.protocol} ${probe.cipher ? h.cipher : ""}`);
        }
        outcomes[kind] = seen;
      } finally {
        health.close();
        await server.kill();
        await Deno.remove(dir, { recursive: true });
      }
    }
    assert.deepEqual(outcomes.cairn, outcomes.etcd);
    assert.equal(
      outcomes.cairn[0],
      "ECDHE-ECDSA-AES128-GCM-SHA256: TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256",
    );
    assert.equal(outcomes.cairn[1], "ECDHE-ECDSA-AES256-GCM-SHA384: (NONE) (NONE)");
    assert.equal(outcomes.cairn[3], "default: TLSv1.3 ");
  },
});

Deno.test("TLS reload: a client URL serves replaced --cert-file/--key-file to new connections", async () => {
  const p = await certificates();
  const dir = await Deno.makeTempDir({ prefix: "cairn-tls-reload-" });
  const files = await copyOf(p.peer, dir, "server");
  const port = freePort();
  const health = tlsClient(p.ca);
  const server = await startCairnAt(
    `${dir}/data`,
    `https://127.0.0.1:${port}`,
    ["--cert-file", files.cert, "--key-file", files.key],
    health,
  );
  try {
    assert.equal((await handshake(port, p.ca)).subject, "peer");
    await replace(files, p.renewed);
    const seen = await waitForSubject(port, p.ca, "renewed");
    assert.equal(seen.at(-1), "renewed", `subjects seen: ${seen.join(", ")}`);
    const res = await fetch(`https://127.0.0.1:${port}/health`, { client: health });
    assert.match(await res.text(), /"health":"true"/);
  } finally {
    health.close();
    await server.kill();
    await Deno.remove(dir, { recursive: true });
  }
});

/** The `error` of etcd's last log line (its fatal start-up error). */
function etcdError(stderr: string): string {
  const line = stderr.trim().split("\n").findLast((l) => l.includes('"error"')) ?? "";
  try {
    return JSON.parse(line).error;
  } catch {
    return line;
  }
}

async function etcdToExit(args: string[]): Promise<string> {
  const out = await new Deno.Command("etcd", {
    args: ["--logger", "zap", ...args],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    signal: AbortSignal.timeout(20_000),
  }).output();
  return etcdError(new TextDecoder().decode(out.stderr));
}

Deno.test({
  name: "TLS flags: etcd 3.4 and cairn refuse the same bad combinations with the same words",
  ignore: !HAVE_ETCD,
  fn: async () => {
    const p = await certificates();
    const dir = await Deno.makeTempDir({ prefix: "cairn-tls-flags-" });
    try {
      const peer = `https://127.0.0.1:${freePort()}`;
      const client = `http://127.0.0.1:${freePort()}`;
      const httpsPeer = [
        "--listen-peer-urls",
        peer,
        "--initial-advertise-peer-urls",
        peer,
        "--initial-cluster",
        `default=${peer}`,
      ];
      const cases: [string, string[]][] = [
        ["unknown suite", ["--cipher-suites", "TLS_FOO"]],
        ["a space after a comma", [
          "--cipher-suites",
          "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        ]],
        ["https peer URL without a certificate", httpsPeer],
        // Every name cairn takes, etcd takes: the next error is the peer URL's.
        ["every known suite", [
          "--cipher-suites",
          CIPHER_SUITES.map((s) => s.name).join(","),
          ...httpsPeer,
        ]],
        ["allowed CN and allowed hostname", [
          ...peerFlags(p.peer, p.ca),
          "--peer-cert-allowed-cn",
          "peer",
          "--peer-cert-allowed-hostname",
          "localhost",
          ...httpsPeer,
        ]],
        ["peer cert without key", ["--peer-cert-file", p.peer.cert]],
        ["peer key without cert", ["--peer-key-file", p.peer.key, ...httpsPeer]],
        ["missing peer cert file", [
          "--peer-cert-file",
          `${dir}/none.pem`,
          "--peer-key-file",
          `${dir}/none-key.pem`,
          ...httpsPeer,
        ]],
      ];
      for (const [what, flags] of cases) {
        const expected = await etcdToExit(["--data-dir", `${dir}/etcd`, ...flags]);
        assert.notEqual(expected, "", `${what}: etcd gave no error`);
        const got = await runCairnToExit(cairnArgs(`${dir}/cairn`, client, flags));
        assert.notEqual(got.code, undefined, `${what}: cairn kept running`);
        assert.notEqual(got.code, 0, `${what}: cairn exited 0`);
        // cairn logs the error in a JSON line, as etcd does.
        const logged = JSON.stringify(expected).slice(1, -1);
        assert.ok(got.stderr.includes(logged), `${what}: expected ${expected}\n${got.stderr}`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "peer TLS: --peer-cert-allowed-cn, --peer-cert-allowed-hostname and --peer-crl-file refuse the certificates etcd 3.4 refuses",
  ignore: !HAVE_ETCD,
  fn: async () => {
    const p = await certificates();
    const dir = await Deno.makeTempDir({ prefix: "cairn-peer-policy-" });
    try {
      const otherHost = await makeCert(dir, p.ca, "other-host", "DNS:other.example,IP:127.0.0.1");
      const revoked = await makeCert(dir, p.ca, "revoked");
      const identities: [string, CertFiles | undefined][] = [
        ["peer", p.peer],
        ["renewed", p.renewed],
        ["other-host", otherHost],
        ["revoked", revoked],
        ["stranger", p.stranger],
        ["none", undefined],
      ];
      /** The identities a member's peer port serves, in list order. */
      const served = async (peerUrl: string) => {
        const names: string[] = [];
        for (const [name, identity] of identities) {
          // HTTP/1.1: etcd's peer port ends an HTTP/2 /members stream uncleanly.
          const client = tlsClient(p.ca, identity, { http2: false });
          if (!await refused(`${peerUrl}/members`, client)) names.push(name);
        }
        return names.join(" ");
      };
      const outcomes: Record<string, Record<string, string>> = {};
      for (const kind of ["etcd", "cairn"] as const) {
        const seen: Record<string, string> = {};
        // The members' own certificate (CN peer, for localhost) passes every policy here.
        const crl = `${dir}/${kind}-crl.pem`;
        await makeCrl(crl, p.ca, [revoked]);
        const peerClient = tlsClient(p.ca, p.peer);
        const withCn = await startCluster({
          kind,
          size: 3,
          peerScheme: "https",
          flags: [
            ...peerFlags(p.peer, p.ca),
            "--peer-cert-allowed-cn",
            "peer",
            "--peer-crl-file",
            crl,
          ],
          peerClient,
        });
        try {
          const m0 = withCn.members[0];
          await put(m0, "k", "v");
          seen["cn peer, crl"] = await served(m0.peerUrl);
          // A list changed on disk applies to the next connection.
          await makeCrl(crl, p.ca, [revoked, p.renewed]);
          seen["cn peer, crl with renewed too"] = await served(m0.peerUrl);
        } finally {
          await withCn.close();
        }
        const withHost = await startCluster({
          kind,
          size: 3,
          peerScheme: "https",
          flags: [...peerFlags(p.peer, p.ca), "--peer-cert-allowed-hostname", "localhost"],
          peerClient,
        });
        try {
          const m0 = withHost.members[0];
          await put(m0, "k", "v");
          seen["hostname localhost"] = await served(m0.peerUrl);
        } finally {
          await withHost.close();
          peerClient.close();
        }
        outcomes[kind] = seen;
      }
      assert.deepEqual(outcomes.cairn, outcomes.etcd);
      assert.deepEqual(outcomes.cairn, {
        "cn peer, crl": "peer",
        "cn peer, crl with renewed too": "peer",
        "hostname localhost": "peer renewed revoked",
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("client TLS: --client-cert-allowed-hostname and --client-crl-file refuse other hosts' and revoked certificates, with etcd's warning", async () => {
  const p = await certificates();
  const dir = await Deno.makeTempDir({ prefix: "cairn-client-policy-" });
  try {
    const otherHost = await makeCert(dir, p.ca, "other-host", "DNS:other.example,IP:10.0.0.1");
    const revoked = await makeCert(dir, p.ca, "revoked");
    const crl = `${dir}/crl.pem`;
    await makeCrl(crl, p.ca, [revoked]);
    const port = freePort();
    const url = `https://127.0.0.1:${port}`;
    const logFile = `${dir}/cairn.log`;
    const health = tlsClient(p.ca, p.peer);
    const server = await startCairnAt(`${dir}/data`, url, [
      "--cert-file",
      p.peer.cert,
      "--key-file",
      p.peer.key,
      "--trusted-ca-file",
      p.ca.cert,
      "--client-cert-auth",
      "--client-cert-allowed-hostname",
      "localhost",
      "--client-crl-file",
      crl,
      "--log-outputs",
      logFile,
    ], health);
    try {
      const range = `${url}/v3/kv/range`;
      const served = async (identity: CertFiles) => {
        const client = tlsClient(p.ca, identity);
        try {
          const res = await fetch(range, { method: "POST", body: '{"key":"YQ=="}', client });
          return (await res.json()).header !== undefined;
        } catch {
          return false;
        } finally {
          client.close();
        }
      };
      assert.equal(await served(p.peer), true, "a certificate for localhost");
      assert.equal(await served(otherHost), false, "a certificate for other hosts");
      assert.equal(await served(revoked), false, "a revoked certificate");
      const warnings = (await Deno.readTextFile(logFile)).split("\n")
        .filter((l) => l.includes('"msg":"rejected connection"'))
        .map((l) => JSON.parse(l));
      assert.ok(
        warnings.some((w) =>
          w.error === "client certificate authentication failed" &&
          w["dns-names"]?.[0] === "other.example" && w["ip-addresses"]?.[0] === "10.0.0.1"
        ),
        JSON.stringify(warnings),
      );
      const serial = new TextDecoder().decode(
        (await new Deno.Command("openssl", {
          args: ["x509", "-in", revoked.cert, "-noout", "-serial"],
          stdout: "piped",
        }).output()).stdout,
      ).trim().replace(/^serial=/, "").toLowerCase().replace(/^(00)+/, "");
      assert.ok(
        warnings.some((w) => w.error === `transport: certificate serial ${serial} revoked`),
        JSON.stringify(warnings),
      );
    } finally {
      health.close();
      await server.kill();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
