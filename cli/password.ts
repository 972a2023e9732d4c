/**
 * How etcdctl 3.4 reads passwords, for `--user name` (no password given),
 * `user add` and `user passwd`:
 * - a prompt (`Password: `, `Password of foo: `) is the terminal prompt of
 *   the bgentry/speakeasy library: the prompt on stdout, echo turned off
 *   with `stty -echo` (whose complaint about a stdin that is no terminal
 *   reaches stderr, as etcdctl's does), one line read from stdin, echo back
 *   on, a newline on stdout;
 * - `--interactive=false` is Go's `fmt.Scanf("%s")`: one word from stdin
 *   (empty at a newline or the end of input).
 *
 * Both read the same stdin, in order, through one {@linkcode StdinReader}.
 *
 * @module
 */

import { CTL_PASSWORD_MAX_BYTES } from "../core/limits.ts";
import type { CtlIO } from "./context.ts";

const dec = new TextDecoder();

/** The bytes Go's fmt counts as spaces inside a line. */
const SPACES = new Set([0x20, 0x09, 0x0b, 0x0c, 0x0d]);

/** Too long a password line (over CTL_PASSWORD_MAX_BYTES). */
export class PasswordTooLong extends Error {
  constructor() {
    super(`password longer than ${CTL_PASSWORD_MAX_BYTES} bytes`);
    this.name = "PasswordTooLong";
  }
}

/** stdin read byte by byte, as speakeasy and fmt.Scanf read it; opened on first use. */
export class StdinReader {
  readonly #open: () => ReadableStream<Uint8Array>;
  #reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  #buf: Uint8Array = new Uint8Array(0);
  #pos = 0;
  #ended = false;

  /** @param open opens stdin (called at the first read). */
  constructor(open: () => ReadableStream<Uint8Array>) {
    this.#open = open;
  }

  /** The next byte, or undefined at the end of input. */
  async #byte(): Promise<number | undefined> {
    while (this.#pos >= this.#buf.length) {
      if (this.#ended) return undefined;
      this.#reader ??= this.#open().getReader();
      const { value, done } = await this.#reader.read();
      if (done) {
        this.#ended = true;
        this.#reader.releaseLock();
        return undefined;
      }
      this.#buf = value;
      this.#pos = 0;
    }
    return this.#buf[this.#pos++];
  }

  /**
   * speakeasy's `readline`: bytes up to a newline or the end of input,
   * without the newline and a trailing `\r`.
   *
   * @throws {PasswordTooLong} past CTL_PASSWORD_MAX_BYTES.
   */
  async readLine(): Promise<string> {
    const bytes: number[] = [];
    for (let b = await this.#byte(); b !== undefined && b !== 0x0a; b = await this.#byte()) {
      if (bytes.length >= CTL_PASSWORD_MAX_BYTES) throw new PasswordTooLong();
      bytes.push(b);
    }
    return dec.decode(new Uint8Array(bytes)).replace(/\r$/, "");
  }

  /**
   * `fmt.Scanf("%s")`: spaces skipped, then the bytes up to a space, a
   * newline or the end of input; the byte that ends the word is consumed
   * (Go reads it to see the word has ended). Empty when a newline or the
   * end comes first.
   *
   * @throws {PasswordTooLong} past CTL_PASSWORD_MAX_BYTES.
   */
  async scanWord(): Promise<string> {
    let b = await this.#byte();
    while (b !== undefined && SPACES.has(b)) b = await this.#byte();
    const bytes: number[] = [];
    for (; b !== undefined && b !== 0x0a && !SPACES.has(b); b = await this.#byte()) {
      if (bytes.length >= CTL_PASSWORD_MAX_BYTES) throw new PasswordTooLong();
      bytes.push(b);
    }
    return dec.decode(new Uint8Array(bytes));
  }
}

/**
 * speakeasy's `Ask(prompt)`: `prompt` on stdout, echo off, one line from
 * stdin, echo on, a newline on stdout.
 *
 * @throws {PasswordTooLong} past CTL_PASSWORD_MAX_BYTES; the error of
 *   `io.setEcho` (stty could not be started).
 */
export async function askPassword(io: CtlIO, stdin: StdinReader, prompt: string): Promise<string> {
  io.stdout.write(prompt);
  await io.setEcho?.(false);
  try {
    return await stdin.readLine();
  } finally {
    await io.setEcho?.(true);
    io.stdout.write("\n");
  }
}

/**
 * Turns the terminal's echo on or off as speakeasy does: `/bin/stty echo`
 * or `/bin/stty -echo` (named `stty` to itself, as speakeasy starts it) on
 * ctl's own stdin, stdout and stderr, so when stdin is no terminal, stty
 * says so on stderr in the words it uses under etcdctl. stty's exit status
 * is not looked at, as speakeasy does not.
 *
 * @throws {Error} `fork/exec /bin/stty: …` when it cannot be started.
 */
export async function sttyEcho(on: boolean): Promise<void> {
  try {
    await new Deno.Command("/bin/sh", {
      args: ["-c", `PATH=/bin exec stty ${on ? "echo" : "-echo"}`],
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn().status;
  } catch (e) {
    throw new Error(`fork/exec /bin/stty: ${(e as Error).message}`);
  }
}
