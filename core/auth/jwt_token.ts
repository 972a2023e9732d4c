/**
 * etcd's `jwt` tokens (auth/jwt.go, auth/options.go in etcd 3.4): a JSON
 * Web Token signed by the member's key, carrying the claims `username`,
 * `revision` (the auth revision when it was issued) and `exp` (Unix seconds:
 * issue time plus the `ttl` option). Any member holding the public key
 * verifies a token any member issued; nothing is stored, so
 * {@linkcode JwtTokens.invalidateUser} and {@linkcode JwtTokens.clear} do
 * nothing, as etcd's. Signing and verification are the `jose` library's; the
 * keys are read from PEM as etcd's JWT library (golang-jwt v3.2.1) reads
 * them, with its error texts. No I/O: the caller reads the key files, the
 * clock is injected.
 *
 * @module
 */
import { createPrivateKey, createPublicKey, type KeyObject, X509Certificate } from "node:crypto";
import { Buffer } from "node:buffer";
import { CompactSign, compactVerify, importJWK, type JWK } from "jose";
import { Errors } from "../errors.ts";
import { invariant } from "../invariant.ts";
import { JWT_MIN_RSA_MODULUS_BITS } from "../limits.ts";
import type { TokenInfo } from "./simple_token.ts";

/**
 * The signing methods etcd 3.4 takes as `sign-method` (golang-jwt v3's
 * registered methods, less `none`, which etcd refuses).
 */
export const JWT_SIGN_METHODS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "HS256",
  "HS384",
  "HS512",
] as const;

/** A `sign-method` etcd 3.4 signs with. */
export type JwtSignMethod = typeof JWT_SIGN_METHODS[number];

/** Whether `name` is one of {@linkcode JWT_SIGN_METHODS} (case matters, as in etcd). */
export function isJwtSignMethod(name: string): name is JwtSignMethod {
  return (JWT_SIGN_METHODS as readonly string[]).includes(name);
}

/**
 * A key etcd would refuse when it builds its token provider; `message` is
 * etcd's text (`auth: missing key data`, `key is not a valid RSA private
 * key`, …), which etcd exits with at start.
 */
export class JwtKeyError extends Error {
  /** An error with etcd's `message`. */
  constructor(message: string) {
    super(message);
    this.name = "JwtKeyError";
  }
}

/** Options of {@linkcode JwtTokens.create}. */
export interface JwtTokenOptions {
  /** The algorithm tokens are signed and verified with (the `sign-method` option). */
  signMethod: JwtSignMethod;
  /**
   * Contents of the `pub-key` file: PEM, a PKIX public key or an X.509
   * certificate (the first PEM block counts). Empty or undefined: none.
   * Ignored by the HS methods.
   */
  publicKey?: Uint8Array;
  /**
   * Contents of the `priv-key` file: PEM, a PKCS #1 or PKCS #8 RSA key, or a
   * SEC 1 or PKCS #8 EC key; for the HS methods the whole file is the
   * secret. Empty or undefined: none (then the member only verifies).
   */
  privateKey?: Uint8Array;
  /** How long an issued token stays valid, in ms (the `ttl` option; 0 or negative as etcd allows). */
  ttlMs: number;
  /** The clock, in ms since the Unix epoch (default `Date.now`). */
  now?: () => number;
}

type Family = "RSA" | "ECDSA" | "HMAC";

function familyOf(method: JwtSignMethod): Family {
  if (method.startsWith("ES")) return "ECDSA";
  if (method.startsWith("HS")) return "HMAC";
  return "RSA";
}

/** The JWK curve an ES method signs with. */
const CURVE: Record<string, string> = { ES256: "P-256", ES384: "P-384", ES512: "P-521" };

// golang-jwt v3.2.1's key errors, as etcd 3.4 exits with them.
const ERR_NOT_PEM = "invalid key: Key must be a PEM encoded PKCS1 or PKCS8 key";
const ERR_NOT_RSA_PRIVATE = "key is not a valid RSA private key";
const ERR_NOT_RSA_PUBLIC = "key is not a valid RSA public key";
const ERR_NOT_EC_PRIVATE = "key is not a valid ECDSA private key";
const ERR_NOT_EC_PUBLIC = "key is not a valid ECDSA public key";
// etcd's auth package errors.
const ERR_MISSING_KEY = "auth: missing key data";
const ERR_KEY_MISMATCH = "auth: public and private keys don't match";

/** The first PEM block of `bytes` (Go's pem.Decode): its label and DER bytes; undefined if none. */
function firstPemBlock(bytes: Uint8Array): { label: string; der: Buffer } | undefined {
  const text = new TextDecoder().decode(bytes);
  const block = /-----BEGIN ([^\r\n-]*)-----\r?\n([\s\S]*?)-----END \1-----/.exec(text);
  if (block === null) return undefined;
  const body = block[2].split(/\r?\n/).filter((line) => !line.includes(":")).join("");
  const base64 = body.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(base64) || base64.length % 4 !== 0) return undefined;
  return { label: block[1], der: Buffer.from(base64, "base64") };
}

/** A private key from DER in one of `types`, the first that parses; undefined if none does. */
function privateFromDer(
  der: Buffer,
  types: ("pkcs1" | "pkcs8" | "sec1")[],
): KeyObject | undefined {
  for (const type of types) {
    try {
      return createPrivateKey({ key: der, format: "der", type });
    } catch {
      // not this encoding
    }
  }
  return undefined;
}

/**
 * The private key in `pem` for `family`, as golang-jwt's
 * ParseRSAPrivateKeyFromPEM / ParseECPrivateKeyFromPEM read it.
 */
function parsePrivateKey(pem: Uint8Array, family: "RSA" | "ECDSA"): KeyObject {
  const block = firstPemBlock(pem);
  if (block === undefined) throw new JwtKeyError(ERR_NOT_PEM);
  const rsa = family === "RSA";
  const key = privateFromDer(block.der, rsa ? ["pkcs1", "pkcs8"] : ["sec1", "pkcs8"]);
  if (key === undefined) {
    // Go's x509 names the parser a key of the other kind needs.
    const other = rsa
      ? privateFromDer(block.der, ["sec1"]) && "ParseECPrivateKey"
      : privateFromDer(block.der, ["pkcs1"]) && "ParsePKCS1PrivateKey";
    throw new JwtKeyError(
      other
        ? `x509: failed to parse private key (use ${other} instead for this key format)`
        : "x509: failed to parse private key",
    );
  }
  if (key.asymmetricKeyType !== (rsa ? "rsa" : "ec")) {
    throw new JwtKeyError(rsa ? ERR_NOT_RSA_PRIVATE : ERR_NOT_EC_PRIVATE);
  }
  return key;
}

/**
 * The public key in `pem` for `family`: a PKIX public key, or the key of an
 * X.509 certificate, as golang-jwt's ParseRSAPublicKeyFromPEM /
 * ParseECPublicKeyFromPEM read it.
 */
function parsePublicKey(pem: Uint8Array, family: "RSA" | "ECDSA"): KeyObject {
  const block = firstPemBlock(pem);
  if (block === undefined) throw new JwtKeyError(ERR_NOT_PEM);
  let key: KeyObject;
  try {
    key = createPublicKey({ key: block.der, format: "der", type: "spki" });
  } catch {
    try {
      key = new X509Certificate(block.der).publicKey;
    } catch {
      // Go reports the certificate parser's error, the last it tried.
      throw new JwtKeyError(
        block.der[0] === 0x30 ? "x509: malformed tbs certificate" : "x509: malformed certificate",
      );
    }
  }
  const rsa = family === "RSA";
  if (key.asymmetricKeyType !== (rsa ? "rsa" : "ec")) {
    throw new JwtKeyError(rsa ? ERR_NOT_RSA_PUBLIC : ERR_NOT_EC_PUBLIC);
  }
  return key;
}

function jwkOf(key: KeyObject): JWK {
  return key.export({ format: "jwk" }) as JWK;
}

/**
 * etcd's check that a pub-key given beside a priv-key belongs to it, kept
 * as etcd 3.4 words it: RSA keys mismatch only when both the exponent and
 * the modulus differ, EC keys only when the curve and both coordinates
 * differ. (Verification uses the private key's own public half either way.)
 */
function keysMismatch(priv: JWK, pub: JWK): boolean {
  if (priv.kty === "RSA") return pub.kty === "RSA" && priv.e !== pub.e && priv.n !== pub.n;
  return priv.crv !== pub.crv && priv.x !== pub.x && priv.y !== pub.y;
}

type SignKey = CryptoKey | Uint8Array;

/** Go's json.Marshal of a string: JSON with `<`, `>`, `&`, U+2028 and U+2029 escaped. */
function goJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** A claim golang-jwt's MapClaims checks as a time: a JSON number, cut to whole seconds. */
function timeClaim(claims: Record<string, unknown>, name: string): number | undefined {
  const v = claims[name];
  return typeof v === "number" ? Math.trunc(v) : undefined;
}

/**
 * The `jwt` tokens of a member: signed with its private key (or HMAC
 * secret), verified with the matching public key. A member given only
 * `pub-key` verifies tokens but cannot issue them ({@linkcode verifyOnly}).
 *
 * @example
 * ```ts
 * const tokens = await JwtTokens.create({ signMethod: "RS256", privateKey: pem, ttlMs: 300_000 });
 * const token = await tokens.assign({ user: "root", revision: 3 });
 * await tokens.info(token); // { user: "root", revision: 3 }
 * ```
 */
export class JwtTokens {
  /** The algorithm of issued tokens; a token with another `alg` is refused. */
  readonly signMethod: JwtSignMethod;
  /** True when the member has no private key: {@linkcode assign} throws etcd's verify-only error. */
  readonly verifyOnly: boolean;
  /** Lifetime of an issued token, in ms. */
  readonly ttlMs: number;
  readonly #signKey: SignKey | undefined;
  readonly #verifyKey: SignKey;
  /** False when an ES method is given a key on another curve (etcd fails to sign then). */
  readonly #curveFits: boolean;
  readonly #now: () => number;

  private constructor(
    options: JwtTokenOptions,
    signKey: SignKey | undefined,
    verifyKey: SignKey,
    curveFits: boolean,
  ) {
    this.signMethod = options.signMethod;
    this.ttlMs = options.ttlMs;
    this.verifyOnly = signKey === undefined;
    this.#signKey = signKey;
    this.#verifyKey = verifyKey;
    this.#curveFits = curveFits;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Read the keys as etcd's token provider does and build the token table.
   * RSA methods (RS*, PS*) take RSA keys, ES methods EC keys, HS methods the
   * raw bytes of the private key file as the HMAC secret.
   *
   * @throws {JwtKeyError} with etcd's text: `auth: missing key data` when no
   *   usable key is given (HS methods need `priv-key`); golang-jwt's texts for
   *   a file that is not PEM or holds the wrong kind of key; `auth: public and
   *   private keys don't match` (by etcd's rule, see above). Also for an RSA
   *   key shorter than JWT_MIN_RSA_MODULUS_BITS, which `jose` cannot use
   *   (etcd has no such bound).
   */
  static async create(options: JwtTokenOptions): Promise<JwtTokens> {
    invariant(isJwtSignMethod(options.signMethod), "the sign method is one etcd takes");
    invariant(Number.isFinite(options.ttlMs), "a token TTL is a finite number of ms");
    const method = options.signMethod;
    const family = familyOf(method);
    const priv = options.privateKey?.length ? options.privateKey : undefined;
    const pub = options.publicKey?.length ? options.publicKey : undefined;
    if (family === "HMAC") {
      if (priv === undefined) throw new JwtKeyError(ERR_MISSING_KEY);
      const secret = new Uint8Array(priv);
      return new JwtTokens(options, secret, secret, true);
    }
    const privKey = priv === undefined ? undefined : parsePrivateKey(priv, family);
    const pubKey = pub === undefined ? undefined : parsePublicKey(pub, family);
    if (privKey === undefined && pubKey === undefined) throw new JwtKeyError(ERR_MISSING_KEY);
    if (privKey !== undefined && pubKey !== undefined) {
      if (keysMismatch(jwkOf(privKey), jwkOf(pubKey))) throw new JwtKeyError(ERR_KEY_MISMATCH);
    }
    const verifyObject = privKey === undefined ? pubKey! : createPublicKey(privKey);
    const details = verifyObject.asymmetricKeyDetails ?? {};
    if (family === "RSA" && (details.modulusLength ?? 0) < JWT_MIN_RSA_MODULUS_BITS) {
      throw new JwtKeyError(
        `RSA keys shorter than ${JWT_MIN_RSA_MODULUS_BITS} bits are not supported: ${details.modulusLength} bits`,
      );
    }
    const verifyJwk = jwkOf(verifyObject);
    const curveFits = family !== "ECDSA" || verifyJwk.crv === CURVE[method];
    // A key on another curve is imported for its own curve's method: etcd
    // starts with it, then fails every signing and verification.
    const importAs = curveFits
      ? method
      : `ES${{ "P-256": 256, "P-384": 384 }[verifyJwk.crv!] ?? 512}`;
    const verifyKey = await importJWK(verifyJwk, importAs) as CryptoKey;
    const signKey = privKey === undefined
      ? undefined
      : await importJWK(jwkOf(privKey), importAs) as CryptoKey;
    return new JwtTokens(options, signKey, verifyKey, curveFits);
  }

  /**
   * A signed token for `info`, valid until now + the TTL (whole seconds, as
   * etcd's `exp`). Header `{"alg":…,"typ":"JWT"}`, payload
   * `{"exp":…,"revision":…,"username":…}`, in etcd's key order.
   *
   * @throws {EtcdError} etcd's `auth: token signing attempted with
   *   verify-only key` on a member without a private key; `key is invalid`
   *   when an ES method was given a key on another curve.
   */
  async assign(info: TokenInfo): Promise<string> {
    if (this.#signKey === undefined) throw Errors.AuthVerifyOnly();
    if (!this.#curveFits) throw Errors.JwtInvalidKey();
    const revision = info.revision;
    invariant(
      revision !== undefined && Number.isSafeInteger(revision) && revision >= 0,
      "a JWT is issued at an auth revision",
    );
    const exp = Math.floor((this.#now() + this.ttlMs) / 1000);
    const payload = goJson({ exp, revision, username: info.user });
    return await new CompactSign(new TextEncoder().encode(payload))
      .setProtectedHeader({ alg: this.signMethod, typ: "JWT" })
      .sign(this.#signKey);
  }

  /**
   * What `token` stands for; undefined when it is malformed, carries another
   * `alg`, has a bad signature, has expired (`exp` before the current Unix
   * second; `iat`/`nbf` after it), or lacks a string `username` and a
   * numeric `revision`.
   */
  async info(token: string): Promise<TokenInfo | undefined> {
    if (!this.#curveFits) return undefined;
    let payload: Uint8Array;
    try {
      ({ payload } = await compactVerify(token, this.#verifyKey, {
        algorithms: [this.signMethod],
      }));
    } catch {
      return undefined;
    }
    let claims: unknown;
    try {
      claims = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payload));
    } catch {
      return undefined;
    }
    if (typeof claims !== "object" || claims === null || Array.isArray(claims)) return undefined;
    const map = claims as Record<string, unknown>;
    const now = Math.floor(this.#now() / 1000);
    // golang-jwt v3: a time claim that is absent, 0 or not a number is not checked.
    const exp = timeClaim(map, "exp");
    if (exp !== undefined && exp !== 0 && now > exp) return undefined;
    for (const name of ["iat", "nbf"]) {
      const t = timeClaim(map, name);
      if (t !== undefined && t !== 0 && now < t) return undefined;
    }
    const { username, revision } = map;
    if (typeof username !== "string" || typeof revision !== "number" || !(revision >= 0)) {
      return undefined;
    }
    return { user: username, revision: Math.trunc(revision) };
  }

  /** Nothing: a JWT stays valid until it expires (etcd's jwt provider does the same). */
  invalidateUser(_user: string): void {}

  /** Nothing: JWTs are not held by the member. */
  clear(): void {}
}
