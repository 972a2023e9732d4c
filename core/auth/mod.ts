/**
 * etcd's auth store (auth/store.go), without I/O: users with bcrypt password
 * hashes and roles, roles with key-range permissions, the enabled flag and
 * the auth revision, and etcd's rules and errors for every change. The
 * applier changes it in log order and stores {@linkcode AuthStore.encode}'s
 * form in the `meta` table, so it survives restarts and travels with
 * snapshots. Passwords arrive here already hashed (the service layer hashes
 * before proposing), so the log never carries a password.
 *
 * Ranges follow etcd: a permission with an empty `range_end` is one key,
 * `range_end` "\0" is every key from `key` on, otherwise `[key, range_end)`.
 *
 * @module
 */
import { Errors } from "../errors.ts";
import type { Permission, PermissionType } from "../api/types.ts";

export type { Permission, PermissionType };
import { invariant } from "../invariant.ts";
import { decodeGoBase64, encodeBase64 } from "../api/base64.ts";

/** authpb.User: a user as stored. */
export interface User {
  /** The user's name. */
  name: string;
  /** bcrypt hash of the password (modular crypt form, `$2a$…`/`$2b$…`); "" for a no-password user. */
  password: string;
  /** Granted role names, sorted. */
  roles: string[];
  /** Whether the user was added with `no_password` (it cannot authenticate with a password). */
  noPassword: boolean;
}

/** The name of the user and of the role that may do everything (etcd's rootUser, rootRole). */
export const ROOT = "root";

/** A replicated change of the auth store, as carried in the Raft log. */
export type AuthChange =
  | { op: "enable" }
  | { op: "disable" }
  | { op: "user_add"; name: string; hashedPassword: string; noPassword: boolean }
  | { op: "user_delete"; name: string }
  | { op: "user_change_password"; name: string; hashedPassword: string }
  | { op: "user_grant_role"; user: string; role: string }
  | { op: "user_revoke_role"; name: string; role: string }
  | { op: "role_add"; name: string }
  | { op: "role_delete"; role: string }
  | { op: "role_grant_permission"; name: string; perm: Permission }
  | { op: "role_revoke_permission"; role: string; key: Uint8Array; range_end: Uint8Array };

/** Bytewise order of two keys (etcd orders keys as raw bytes). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

const sameBytes = (a: Uint8Array, b: Uint8Array) => compareBytes(a, b) === 0;

interface StoredState {
  enabled: boolean;
  revision: number;
  users: [string, string, string[], boolean][];
  roles: [string, [PermissionType, string, string][]][];
}

/** etcd's auth store: users, roles, the enabled flag and the auth revision. */
export class AuthStore {
  #enabled = false;
  /** etcd's auth revision: 1 on a new store, +1 at each change but enable. */
  #revision = 1;
  #users = new Map<string, User>();
  /** Each user's merged ranges per permission type, as checks made them (cleared by every change). */
  #merged = new Map<string, Interval[]>();
  #roles = new Map<string, Permission[]>();

  /**
   * The store as {@linkcode AuthStore.encode} wrote it (undefined: a new store).
   *
   * @throws {InvariantError} when `stored` is not such a form.
   */
  static decode(stored: unknown): AuthStore {
    const store = new AuthStore();
    if (stored === undefined) return store;
    invariant(typeof stored === "string", "the auth store is stored as a JSON string");
    const s = JSON.parse(stored) as StoredState;
    store.#enabled = s.enabled;
    store.#revision = s.revision;
    for (const [name, password, roles, noPassword] of s.users) {
      store.#users.set(name, { name, password, roles, noPassword });
    }
    for (const [name, perms] of s.roles) {
      store.#roles.set(
        name,
        perms.map(([permType, key, end]) => ({
          permType,
          key: decodeStored(key),
          range_end: decodeStored(end),
        })),
      );
    }
    return store;
  }

  /** The form {@linkcode AuthStore.decode} reads: JSON, keys in base64. */
  encode(): string {
    const s: StoredState = {
      enabled: this.#enabled,
      revision: this.#revision,
      users: [...this.#users.values()].map((u) => [u.name, u.password, u.roles, u.noPassword]),
      roles: [...this.#roles].map(([name, perms]) => [
        name,
        perms.map((p) => [p.permType, encodeBase64(p.key), encodeBase64(p.range_end)]),
      ]),
    };
    return JSON.stringify(s);
  }

  /** Whether authentication is enabled. */
  get enabled(): boolean {
    return this.#enabled;
  }

  /** The auth revision: tokens issued at an older one are stale for checks. */
  get revision(): number {
    return this.#revision;
  }

  /**
   * Apply one replicated change with etcd's rules.
   *
   * @throws {EtcdError} RootUserNotExist, RootRoleNotExist (enable);
   *   UserEmpty, UserAlreadyExist (user add); UserNotFound; RoleEmpty,
   *   RoleAlreadyExist (role add); RoleNotFound; RoleNotGranted;
   *   PermissionNotGranted; InvalidAuthMgmt (removing root's powers while
   *   auth is on). Nothing changes when it throws.
   */
  apply(change: AuthChange): void {
    this.#merged.clear();
    switch (change.op) {
      case "enable":
        return this.#enable();
      case "disable":
        if (!this.#enabled) return;
        this.#enabled = false;
        return this.#commit();
      case "user_add":
        return this.#userAdd(change.name, change.hashedPassword, change.noPassword);
      case "user_delete":
        if (this.#enabled && change.name === ROOT) throw Errors.InvalidAuthMgmt();
        this.#user(change.name);
        this.#users.delete(change.name);
        return this.#commit();
      case "user_change_password": {
        const user = this.#user(change.name);
        this.#users.set(change.name, { ...user, password: change.hashedPassword });
        return this.#commit();
      }
      case "user_grant_role":
        return this.#userGrantRole(change.user, change.role);
      case "user_revoke_role":
        return this.#userRevokeRole(change.name, change.role);
      case "role_add":
        if (change.name === "") throw Errors.RoleEmpty();
        if (this.#roles.has(change.name)) throw Errors.RoleAlreadyExist();
        this.#roles.set(change.name, []);
        return this.#commit();
      case "role_delete":
        return this.#roleDelete(change.role);
      case "role_grant_permission":
        return this.#roleGrantPermission(change.name, change.perm);
      case "role_revoke_permission":
        return this.#roleRevokePermission(change.role, change.key, change.range_end);
      default:
        invariant(false, `unknown auth change ${JSON.stringify(change)}`);
    }
  }

  /**
   * etcd UserGet: the user's roles, sorted.
   *
   * @throws {EtcdError} UserNotFound.
   */
  userGet(name: string): string[] {
    return [...this.#user(name).roles];
  }

  /** etcd UserList: every user name, in bytewise order. */
  userList(): string[] {
    return [...this.#users.keys()].sort(compareStrings);
  }

  /** The stored user (a copy), or undefined. */
  user(name: string): User | undefined {
    const u = this.#users.get(name);
    return u === undefined ? undefined : { ...u, roles: [...u.roles] };
  }

  /**
   * etcd RoleGet: the role's permissions, in key order.
   *
   * @throws {EtcdError} RoleNotFound.
   */
  roleGet(name: string): Permission[] {
    const perms = this.#roles.get(name);
    if (perms === undefined) throw Errors.RoleNotFound();
    return perms.map((p) => ({ ...p }));
  }

  /** etcd RoleList: every role name, in bytewise order. */
  roleList(): string[] {
    return [...this.#roles.keys()].sort(compareStrings);
  }

  /**
   * Whether `user` may do `permType` on `[key, rangeEnd)` (etcd's
   * isOpPermitted over its merged range-permission cache): the root role
   * may do everything; otherwise the union of the ranges the user's roles
   * grant for `permType` (READWRITE counts as both) must cover the whole
   * requested range. `rangeEnd` empty: `key` alone; "\0": every key from
   * `key`. Always true while auth is disabled.
   */
  checkRange(
    user: string,
    key: Uint8Array,
    rangeEnd: Uint8Array,
    permType: "READ" | "WRITE",
  ): boolean {
    if (!this.#enabled) return true;
    const u = this.#users.get(user);
    if (u === undefined) return false;
    if (u.roles.includes(ROOT)) return true;
    const cacheKey = `${permType}\0${user}`;
    let merged = this.#merged.get(cacheKey);
    if (merged === undefined) {
      const ranges: Interval[] = [];
      for (const role of u.roles) {
        for (const p of this.#roles.get(role) ?? []) {
          if (p.permType === permType || p.permType === "READWRITE") ranges.push(interval(p));
        }
      }
      merged = mergeIntervals(ranges);
      // Bounded by the users and the two permission types.
      this.#merged.set(cacheKey, merged);
    }
    return covers(merged, interval({ key, range_end: rangeEnd }));
  }

  #user(name: string): User {
    const user = this.#users.get(name);
    if (user === undefined) throw Errors.UserNotFound();
    return user;
  }

  #commit(): void {
    this.#revision++;
  }

  #enable(): void {
    if (this.#enabled) return;
    const root = this.#users.get(ROOT);
    if (root === undefined) throw Errors.RootUserNotExist();
    if (!root.roles.includes(ROOT)) throw Errors.RootRoleNotExist();
    // etcd turns auth on without a new revision.
    this.#enabled = true;
  }

  #userAdd(name: string, password: string, noPassword: boolean): void {
    if (name === "") throw Errors.UserEmpty();
    if (this.#users.has(name)) throw Errors.UserAlreadyExist();
    this.#users.set(name, { name, password: noPassword ? "" : password, roles: [], noPassword });
    this.#commit();
  }

  #userGrantRole(name: string, role: string): void {
    const user = this.#user(name);
    // The root role exists implicitly.
    if (role !== ROOT && !this.#roles.has(role)) throw Errors.RoleNotFound();
    if (user.roles.includes(role)) return;
    user.roles = [...user.roles, role].sort(compareStrings);
    this.#commit();
  }

  #userRevokeRole(name: string, role: string): void {
    if (this.#enabled && name === ROOT && role === ROOT) throw Errors.InvalidAuthMgmt();
    const user = this.#user(name);
    if (!user.roles.includes(role)) throw Errors.RoleNotGranted();
    user.roles = user.roles.filter((r) => r !== role);
    this.#commit();
  }

  #roleDelete(role: string): void {
    if (this.#enabled && role === ROOT) throw Errors.InvalidAuthMgmt();
    if (!this.#roles.has(role)) throw Errors.RoleNotFound();
    this.#roles.delete(role);
    for (const user of this.#users.values()) {
      if (user.roles.includes(role)) user.roles = user.roles.filter((r) => r !== role);
    }
    this.#commit();
  }

  #roleGrantPermission(name: string, perm: Permission): void {
    const perms = this.#roles.get(name);
    if (perms === undefined) throw Errors.RoleNotFound();
    // etcd looks at the first permission whose key is not below the new
    // one's: the same key and range_end there is updated; anything else
    // (even the same range further on) gets a new entry.
    const first = perms.find((p) => compareBytes(p.key, perm.key) >= 0);
    const known = first !== undefined && sameBytes(first.key, perm.key) &&
        sameBytes(first.range_end, perm.range_end)
      ? first
      : undefined;
    if (known !== undefined) known.permType = perm.permType;
    else {
      perms.push({ permType: perm.permType, key: perm.key, range_end: perm.range_end });
      // Key order, as etcd keeps them; equal keys in the order granted.
      perms.sort((a, b) => compareBytes(a.key, b.key));
    }
    this.#commit();
  }

  #roleRevokePermission(role: string, key: Uint8Array, rangeEnd: Uint8Array): void {
    const perms = this.#roles.get(role);
    if (perms === undefined) throw Errors.RoleNotFound();
    const kept = perms.filter((p) => !(sameBytes(p.key, key) && sameBytes(p.range_end, rangeEnd)));
    if (kept.length === perms.length) throw Errors.PermissionNotGranted();
    this.#roles.set(role, kept);
    this.#commit();
  }
}

/** Bytes stored by {@linkcode AuthStore.encode}. */
function decodeStored(text: string): Uint8Array {
  const bytes = decodeGoBase64(text);
  invariant(typeof bytes !== "number", "stored auth keys are base64");
  return bytes;
}

/** Bytewise (UTF-8) order of names, as etcd's bbolt buckets list them. */
function compareStrings(a: string, b: string): number {
  const enc = new TextEncoder();
  return compareBytes(enc.encode(a), enc.encode(b));
}

/** A half-open key interval; `end` undefined: unbounded. */
interface Interval {
  start: Uint8Array;
  end: Uint8Array | undefined;
}

/** etcd's range of a key and range_end: one key, from-key, or `[key, range_end)`. */
function interval(r: { key: Uint8Array; range_end: Uint8Array }): Interval {
  if (r.range_end.length === 0) {
    // One key: [key, key + "\0").
    const end = new Uint8Array(r.key.length + 1);
    end.set(r.key);
    return { start: r.key, end };
  }
  if (r.range_end.length === 1 && r.range_end[0] === 0) return { start: r.key, end: undefined };
  return { start: r.key, end: r.range_end };
}

/** The union of `ranges` as disjoint intervals in key order (etcd merges overlapping and adjacent ones). */
function mergeIntervals(ranges: Interval[]): Interval[] {
  const sorted = ranges
    .filter((r) => r.end === undefined || compareBytes(r.start, r.end) < 0)
    .sort((a, b) => compareBytes(a.start, b.start));
  const out: Interval[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && (last.end === undefined || compareBytes(r.start, last.end) <= 0)) {
      if (last.end !== undefined && (r.end === undefined || compareBytes(r.end, last.end) > 0)) {
        last.end = r.end;
      }
    } else out.push({ ...r });
  }
  return out;
}

/** Whether one of the disjoint `merged` intervals holds all of `want`. */
function covers(merged: Interval[], want: Interval): boolean {
  return merged.some((r) =>
    compareBytes(r.start, want.start) <= 0 &&
    (r.end === undefined || (want.end !== undefined && compareBytes(want.end, r.end) <= 0))
  );
}
