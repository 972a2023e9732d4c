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
 * A certificate with common name `name` signed by `ca`, for `localhost` and
 * 127.0.0.1, for server and client authentication: `<name>.pem`,
 * `<name>-key.pem` in `dir`.
 */
export async function makeCert(dir: string, ca: CertFiles, name: string): Promise<CertFiles> {
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
    "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n",
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

/** A Deno HTTP client that trusts `ca` and, when given, presents `identity`. */
export function tlsClient(ca: CertFiles, identity?: CertFiles): Deno.HttpClient {
  return Deno.createHttpClient({
    caCerts: [Deno.readTextFileSync(ca.cert)],
    ...(identity === undefined ? {} : {
      cert: Deno.readTextFileSync(identity.cert),
      key: Deno.readTextFileSync(identity.key),
    }),
  });
}
