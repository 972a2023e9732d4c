/**
 * server/cert_policy.ts: serial numbers as etcd prints them, revocation
 * lists read from PEM and DER and again when the file changes, the allowed
 * CN and host checks, and what a connection without a certificate gets.
 */
import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import type * as tls from "node:tls";
import {
  CERT_AUTH_FAILED,
  certificateFields,
  certificateRefusal,
  goSerial,
  policyError,
  RevocationList,
  revokedSerials,
} from "../../server/cert_policy.ts";
import { makeCa, makeCert, makeCrl, openssl } from "../certs.ts";

/** node:tls's view of a certificate file, as getPeerCertificate(true) gives it. */
function peerView(path: string): tls.DetailedPeerCertificate {
  const cert = new X509Certificate(Deno.readTextFileSync(path));
  return {
    ...cert.toLegacyObject(),
    issuerCertificate: undefined,
  } as unknown as tls.DetailedPeerCertificate;
}

Deno.test("goSerial prints a serial as Go's %x of its bytes: even length, no leading zero bytes", () => {
  assertEquals(goSerial("103"), "0103");
  assertEquals(goSerial("0103"), "0103");
  assertEquals(goSerial("00E252AA"), "e252aa");
  assertEquals(goSerial("E252AA"), "e252aa");
  assertEquals(goSerial("0"), "");
});

Deno.test("policyError: an allowed CN and an allowed host name together, in etcd's words", () => {
  assertEquals(
    policyError({ allowedCn: "a", allowedHostname: "b" }),
    'AllowedCN and AllowedHostname are mutually exclusive (cn="a", hostname="b")',
  );
  assertEquals(policyError({ allowedCn: "a", crlFile: "x" }), undefined);
  assertEquals(policyError({}), undefined);
});

Deno.test("revocation lists: PEM and DER give the same serials; a changed file is read again; a bad one refuses", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cairn-cert-policy-" });
  try {
    const ca = await makeCa(dir, "ca");
    const alice = await makeCert(dir, ca, "alice");
    const bob = await makeCert(dir, ca, "bob", "DNS:other.example,IP:10.0.0.1");
    const crl = `${dir}/crl.pem`;
    await makeCrl(crl, ca, [bob]);
    const bobSerial = goSerial(peerView(bob.cert).serialNumber);
    assertEquals([...revokedSerials(Deno.readFileSync(crl))], [bobSerial]);
    await openssl(["crl", "-in", crl, "-outform", "DER", "-out", `${dir}/crl.der`], dir);
    assertEquals([...revokedSerials(Deno.readFileSync(`${dir}/crl.der`))], [bobSerial]);

    const list = new RevocationList(crl);
    const policy = { crlFile: crl };
    assertEquals(certificateRefusal(peerView(alice.cert), policy, true, list), undefined);
    assertEquals(
      certificateRefusal(peerView(bob.cert), policy, true, list),
      `transport: certificate serial ${bobSerial} revoked`,
    );
    // No certificate: nothing to look up (the handshake decided).
    assertEquals(certificateRefusal(null, policy, false, list), undefined);
    assertEquals(
      certificateRefusal({} as tls.DetailedPeerCertificate, policy, false, list),
      undefined,
    );

    await makeCrl(crl, ca, [alice, bob]);
    assertEquals(
      certificateRefusal(peerView(alice.cert), policy, true, list)?.endsWith("revoked"),
      true,
    );
    await Deno.writeTextFile(crl, "not a list");
    throws(() => list.serials(), /malformed crl/);
    assertEquals(
      certificateRefusal(peerView(alice.cert), policy, true, list)?.startsWith(
        "x509: malformed crl",
      ),
      true,
    );
    await Deno.remove(crl);
    assertEquals(
      certificateRefusal(peerView(alice.cert), policy, true, list),
      `open ${crl}: no such file or directory`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("allowed CN and host: checked with client certificate auth only; fields of etcd's warning", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cairn-cert-policy-" });
  try {
    const ca = await makeCa(dir, "ca");
    const alice = peerView((await makeCert(dir, ca, "alice")).cert);
    const bob = peerView((await makeCert(dir, ca, "bob", "DNS:other.example,IP:10.0.0.1")).cert);
    const cn = { allowedCn: "alice" };
    assertEquals(certificateRefusal(alice, cn, true, undefined), undefined);
    assertEquals(certificateRefusal(bob, cn, true, undefined), CERT_AUTH_FAILED);
    assertEquals(certificateRefusal(bob, cn, false, undefined), undefined);
    assertEquals(certificateRefusal(null, cn, true, undefined), CERT_AUTH_FAILED);
    const host = { allowedHostname: "other.example" };
    assertEquals(certificateRefusal(bob, host, true, undefined), undefined);
    assertEquals(certificateRefusal(alice, host, true, undefined), CERT_AUTH_FAILED);
    assertEquals(
      certificateRefusal(bob, { allowedHostname: "10.0.0.1" }, true, undefined),
      undefined,
    );
    assertEquals(
      certificateRefusal(bob, { allowedHostname: "127.0.0.1" }, true, undefined),
      CERT_AUTH_FAILED,
    );
    assertEquals(certificateFields(bob), {
      "ip-addresses": ["10.0.0.1"],
      "dns-names": ["other.example"],
    });
    assertEquals(certificateFields(null), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
