/**
 * The exclusive lock on a member's --data-dir: one process at a time opens
 * the store in it (a server, or a store embedded with mod.ts `openStore`), so a second
 * one fails at once instead of writing to the same LMDB environment.
 *
 * The lock is an advisory `flock` (Deno's `FsFile.tryLockSync`) on
 * `<data-dir>/cairn.lock`, which holds the holder's PID for the error a
 * second process prints. `flock` belongs to the open file, not the process:
 * the kernel drops it when the holder exits, even on kill -9, so a file left
 * behind never blocks a restart, and a second open in the same process is
 * refused too. HTTP worker threads open the LMDB environment without it; they
 * are part of the process that holds it.
 *
 * The file is never removed: unlinking it on close would let a process that
 * opened the old file before the unlink hold a lock on it while another locks
 * a new file at the same path.
 *
 * @module
 */

/** Name of the lock file in --data-dir. */
export const LOCK_FILE = "cairn.lock";

/** Thrown when another process (or another store in this one) holds the data dir. */
export class DataDirLockedError extends Error {
  /** The data directory that is locked. */
  readonly dataDir: string;
  /** PID of the holder as written in the lock file; undefined if it could not be read. */
  readonly pid: number | undefined;

  /**
   * Builds the error.
   * @param dataDir the locked directory.
   * @param pid the holder's PID, if known.
   */
  constructor(dataDir: string, pid: number | undefined) {
    const holder = pid === undefined ? "another process" : `process ${pid}`;
    super(`Cannot open data dir ${dataDir}: it is locked by ${holder}`);
    this.name = "DataDirLockedError";
    this.dataDir = dataDir;
    this.pid = pid;
  }
}

/** A held data-dir lock. */
export interface DataDirLock {
  /** Path of the lock file. */
  readonly path: string;
  /** Release the lock (idempotent). */
  release(): void;
}

/**
 * Take the exclusive lock on `dataDir` (created if missing) and write this
 * process's PID into the lock file. Does not wait.
 *
 * @throws {DataDirLockedError} when the lock is held, by another process or
 *   by another store of this process.
 * @throws {Error} when the directory or the file cannot be created.
 */
export function lockDataDir(dataDir: string): DataDirLock {
  Deno.mkdirSync(dataDir, { recursive: true });
  const path = `${dataDir}/${LOCK_FILE}`;
  const file = Deno.openSync(path, { read: true, write: true, create: true });
  try {
    if (!file.tryLockSync(true)) throw new DataDirLockedError(dataDir, readPid(file));
    // Only the holder writes: a reader that finds the file locked reads the PID.
    file.truncateSync(0);
    const bytes = new TextEncoder().encode(`${Deno.pid}\n`);
    let written = 0;
    while (written < bytes.length) written += file.writeSync(bytes.subarray(written));
  } catch (err) {
    file.close();
    throw err;
  }
  let held = true;
  return {
    path,
    release() {
      if (!held) return;
      held = false;
      // Closing the file drops the flock.
      file.close();
    },
  };
}

/** The PID in the lock file, or undefined (the holder may not have written it yet). */
function readPid(file: Deno.FsFile): number | undefined {
  const buf = new Uint8Array(32);
  file.seekSync(0, Deno.SeekMode.Start);
  const n = file.readSync(buf) ?? 0;
  const match = /^\d+/.exec(new TextDecoder().decode(buf.subarray(0, n)));
  return match === null ? undefined : Number(match[0]);
}
