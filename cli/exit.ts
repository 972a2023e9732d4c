/**
 * etcdctl's exit codes (`etcdctl/ctlv3/command/error.go`) and the error that
 * carries one out of a command to {@linkcode runCtl}.
 *
 * @module
 */

/** Process exit codes, as etcdctl 3.4 numbers them. */
export const ExitCode = {
  Success: 0,
  Error: 1,
  BadConnection: 2,
  /** Malformed txn or watch input. */
  InvalidInput: 3,
  /** A valid flag with an unsupported value. */
  BadFeature: 4,
  Interrupted: 5,
  IO: 6,
  BadArgs: 128,
} as const;

/** The exit code Go uses for an unrecovered panic. */
export const PANIC_EXIT_CODE = 2;

/**
 * Ends a ctl command: `runCtl` prints `Error: <message>` on stderr (or the
 * message alone when `bare`) and exits with `exitCode`.
 */
export class CtlError extends Error {
  readonly exitCode: number;
  /** Print the message as is, without the `Error: ` prefix. */
  readonly bare: boolean;

  /** Text printed on stderr before the error (cobra's usage after a flag error). */
  usage?: string;

  constructor(exitCode: number, message: string, bare = false) {
    super(message);
    this.name = "CtlError";
    this.exitCode = exitCode;
    this.bare = bare;
  }
}

/** A Go `panic(msg)` in etcdctl: `panic: msg` on stderr, exit 2. */
export function goPanic(msg: string): CtlError {
  return new CtlError(PANIC_EXIT_CODE, `panic: ${msg}\n`, true);
}
