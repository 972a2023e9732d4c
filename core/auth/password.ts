/**
 * Password hashes as etcd stores them: bcrypt (modular crypt form) at the
 * member's --bcrypt-cost, through the `bcryptjs` library. Hashing runs
 * before a change is proposed, so the Raft log and the store carry only the
 * hash.
 *
 * @module
 */
import bcrypt from "bcryptjs";
import { DEFAULT_BCRYPT_COST, MAX_BCRYPT_COST, MIN_BCRYPT_COST } from "../limits.ts";

/**
 * The cost to hash with: `cost`, or etcd's default (10) when it is outside
 * bcrypt's range 4–31 (etcd warns and uses the default then).
 */
export function bcryptCost(cost: number | undefined): number {
  if (cost === undefined || !Number.isInteger(cost)) return DEFAULT_BCRYPT_COST;
  return cost < MIN_BCRYPT_COST || cost > MAX_BCRYPT_COST ? DEFAULT_BCRYPT_COST : cost;
}

/** bcrypt hash of `password` at `cost` (2^cost rounds; see {@linkcode bcryptCost}). */
export function hashPassword(password: string, cost: number): Promise<string> {
  return bcrypt.hash(password, bcryptCost(cost));
}

/** Whether `password` matches the bcrypt `hash` (false for an empty or malformed hash). */
export async function checkPassword(password: string, hash: string): Promise<boolean> {
  if (hash === "") return false;
  try {
    return await bcrypt.compare(password, hash);
  } catch {
    return false;
  }
}
