/**
 * `version`: the etcdctl release whose grammar and output ctl follows, and
 * the API version, in etcdctl's two lines.
 *
 * @module
 */

import type { CtlContext } from "../context.ts";
import type { FlagSpec } from "../flags.ts";
import { ETCD_API_VERSION } from "../../version.ts";

/** The etcd release cairn's API and ctl output follow (as the server's /version says). */
export const CTL_VERSION = ETCD_API_VERSION;
/** The etcd API version (major.minor). */
export const API_VERSION = ETCD_API_VERSION.split(".").slice(0, 2).join(".");

/** Flags of `version`: none. */
export const flags: readonly FlagSpec[] = [];

/** Runs `version`. */
export function run(ctx: CtlContext): Promise<void> {
  ctx.io.stdout.write(`etcdctl version: ${CTL_VERSION}\nAPI version: ${API_VERSION}\n`);
  return Promise.resolve();
}
