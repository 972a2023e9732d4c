/**
 * An in-memory CtlIO for ctl tests: stdin from a string, the environment
 * from a record, stdout and stderr collected.
 *
 * @module
 */
import type { CtlIO } from "../../cli/ctl.ts";

const dec = new TextDecoder();

/** A CtlIO reading `stdin` and `env`; `out()` and `err()` give what was written. */
export function memoryIO(stdin = "", env: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CtlIO = {
    stdout: { write: (d) => out.push(typeof d === "string" ? d : dec.decode(d)) },
    stderr: { write: (d) => err.push(typeof d === "string" ? d : dec.decode(d)) },
    stdin: () => new Blob([stdin]).stream(),
    env: (k) => env[k],
  };
  return { io, out: () => out.join(""), err: () => err.join("") };
}
