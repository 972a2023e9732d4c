/**
 * Certificates for the TLS tests, made with `openssl` at test time: CAs,
 * and certificates they sign for `localhost` and 127.0.0.1, usable by
 * servers and clients alike.
 *
 * @module
 */

/** PEM files of one certificate, in a directory of the test's own. */
export interface CertFiles {
  /** The certificate, PEM. */
  cert: string;
  /** Its private key, PEM. */
  key: string;
}

/** Run `openssl args` in `cwd`; throws with its stderr when it fails. */
export async function openssl(args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "null", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`openssl ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** A self-signed CA named `name` in `dir`: `<name>.pem`, `<name>-key.pem`. */
export async function makeCa(dir: string, name: string): Promise<CertFiles> {
  await openssl([
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    `${name}-key.pem`,
    "-out",
    `${name}.pem`,
    "-days",
    "1",
    "-subj",
    `/CN=${name}`,
  ], dir);
  return { cert: `${dir}/${name}.pem`, key: `${dir}/${name}-key.pem` };
}

/**
 * A certificate with common name `name` signed by `ca`, for `sans` (default
 * `localhost` and 127.0.0.1: `DNS:localhost,IP:127.0.0.1`), for server and
 * client authentication: `<name>.pem`, `<name>-key.pem` in `dir`.
 */
export async function makeCert(
  dir: string,
  ca: CertFiles,
  name: string,
  sans = "DNS:localhost,IP:127.0.0.1",
): Promise<CertFiles> {
  await openssl([
    "req",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    `${name}-key.pem`,
    "-out",
    `${name}.csr`,
    "-subj",
    `/CN=${name}`,
  ], dir);
  await Deno.writeTextFile(
    `${dir}/${name}.ext`,
    `subjectAltName=${sans}\nextendedKeyUsage=serverAuth,clientAuth\n`,
  );
  await openssl([
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    ca.cert,
    "-CAkey",
    ca.key,
    "-CAcreateserial",
    "-out",
    `${name}.pem`,
    "-days",
    "1",
    "-extfile",
    `${name}.ext`,
  ], dir);
  return { cert: `${dir}/${name}.pem`, key: `${dir}/${name}-key.pem` };
}

/**
 * Write to `path` a certificate revocation list (PEM) that `ca` signs,
 * revoking `revoked` (certificates `ca` signed). Each call makes a new list.
 */
export async function makeCrl(path: string, ca: CertFiles, revoked: CertFiles[]): Promise<void> {
  const work = await Deno.makeTempDir({ prefix: "cairn-crl-" });
  try {
    await Deno.writeTextFile(`${work}/index.txt`, "");
    await Deno.writeTextFile(`${work}/crlnumber`, "01\n");
    await Deno.writeTextFile(
      `${work}/ca.cnf`,
      `[ca]\ndefault_ca = own\n[own]\ndatabase = ${work}/index.txt\n` +
        `crlnumber = ${work}/crlnumber\ndefault_md = sha256\ndefault_crl_days = 1\n`,
    );
    const common = ["-config", "ca.cnf", "-keyfile", ca.key, "-cert", ca.cert];
    for (const cert of revoked) await openssl(["ca", ...common, "-revoke", cert.cert], work);
    await openssl(["ca", ...common, "-gencrl", "-out", path], work);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}

/**
 * A Deno HTTP client that trusts `ca` and, when given, presents `identity`;
 * `options` adds to its settings (`{ http2: false }` for HTTP/1.1 only).
 */
export function tlsClient(
  ca: CertFiles,
  identity?: CertFiles,
  options: Deno.CreateHttpClientOptions = {},
): Deno.HttpClient {
  return Deno.createHttpClient({
    ...options,
    caCerts: [Deno.readTextFileSync(ca.cert)],
    ...(identity === undefined ? {} : {
      cert: Deno.readTextFileSync(identity.cert),
      key: Deno.readTextFileSync(identity.key),
    }),
  });
}
