/**
 * etcd's Auth service: enable and disable authentication, authenticate
 * (`simple` tokens), and manage users and roles. Every change is a
 * replicated request (core/auth's rules run in the applier, in log order);
 * passwords are hashed here, before the change is proposed, so neither the
 * log nor the store ever holds one. Reads (get, list) are linearizable.
 * Every response's header carries the KV store's current revision, as
 * etcd's.
 *
 * Not here yet: permission checks on KV, watch, lease and maintenance
 * requests, and on the Auth service itself (etcd lets only root manage it
 * while auth is on).
 *
 * @module
 */
import type {
  AuthenticateRequest,
  AuthenticateResponse,
  AuthHeaderResponse,
  AuthNameRequest,
  AuthRoleGetResponse,
  AuthRoleGrantPermissionRequest,
  AuthRoleRequest,
  AuthRoleRevokePermissionRequest,
  AuthRolesResponse,
  AuthUserAddRequest,
  AuthUserChangePasswordRequest,
  AuthUserGrantRoleRequest,
  AuthUserListResponse,
  AuthUserRevokeRoleRequest,
  ResponseHeader,
} from "../../core/api/types.ts";
import type { AuthChange, AuthStore } from "../../core/auth/mod.ts";
import { bcryptCost, checkPassword, hashPassword } from "../../core/auth/password.ts";
import { adminPermission, type AuthInfo } from "../../core/auth/permission.ts";
import { Errors, type EtcdError } from "../../core/errors.ts";
import {
  AUTH_FAILURE_BURST,
  AUTH_FAILURE_INTERVAL_MS,
  MAX_TRACKED_AUTH_FAILURES,
} from "../../core/limits.ts";
import type { Credentials, ServiceContext } from "./context.ts";

/** Options of {@linkcode AuthServer}: etcd's auth flags. */
export interface AuthOptions {
  /** --bcrypt-cost: cost of password hashes, 4–31 (others: 10). Default 10. */
  bcryptCost?: number;
  /** The clock failed authentications are limited by, in ms. Default `performance.now`. */
  failureClock?: () => number;
}

/** etcd's Auth RPCs, as transports call them (see {@linkcode AuthServer}). */
export type AuthService = Pick<
  AuthServer,
  | "authEnable"
  | "authDisable"
  | "authenticate"
  | "userAdd"
  | "userGet"
  | "userList"
  | "userDelete"
  | "userChangePassword"
  | "userGrantRole"
  | "userRevokeRole"
  | "roleAdd"
  | "roleGet"
  | "roleList"
  | "roleDelete"
  | "roleGrantPermission"
  | "roleRevokePermission"
>;

/** The Auth service of one member (its `simple` tokens are this member's alone). */
export class AuthServer {
  readonly #ctx: ServiceContext;
  readonly #cost: number;
  readonly #failures: AuthFailureLimiter;

  /** The Auth service over a member's shared service context. */
  constructor(ctx: ServiceContext, options: AuthOptions = {}) {
    this.#ctx = ctx;
    this.#cost = bcryptCost(options.bcryptCost);
    this.#failures = new AuthFailureLimiter(options.failureClock ?? (() => performance.now()));
  }

  /** The auth store as committed (after a linearizing wait: every acknowledged change). */
  store(): AuthStore {
    return this.#ctx.auth();
  }

  /**
   * etcd Auth.AuthEnable: turn authentication on.
   *
   * @throws {EtcdError} RootUserNotExist, RootRoleNotExist; NoLeader, Timeout.
   */
  authEnable(_req?: unknown, creds?: Credentials): Promise<AuthHeaderResponse> {
    return this.#change({ op: "enable" }, creds);
  }

  /** etcd Auth.AuthDisable: turn authentication off (no change when it is off). */
  authDisable(_req?: unknown, creds?: Credentials): Promise<AuthHeaderResponse> {
    return this.#change({ op: "disable" }, creds);
  }

  /**
   * etcd Auth.Authenticate: a `simple` token for `name` when `password` is
   * its password, valid on this member for --auth-token-ttl seconds after
   * its last use.
   *
   * Failed attempts are limited per user name and thread (beyond etcd):
   * after AUTH_FAILURE_BURST failures, one attempt per
   * AUTH_FAILURE_INTERVAL_MS is checked and the others fail at once with
   * AuthFailed, so a password cannot be guessed at network speed.
   *
   * @throws {EtcdError} AuthNotEnabled (auth off); AuthFailed (unknown user,
   *   wrong password, too many failures); NoPasswordUser (a user added with
   *   `no_password`).
   */
  async authenticate(req: AuthenticateRequest): Promise<AuthenticateResponse> {
    const ctx = this.#ctx;
    await ctx.linearizeRead(false);
    const store = this.store();
    if (!store.enabled) throw Errors.AuthNotEnabled();
    const name = req.name ?? "";
    if (!this.#failures.mayTry(name)) throw Errors.AuthFailed();
    const user = store.user(name);
    if (user === undefined) {
      this.#failures.failed(name);
      throw Errors.AuthFailed();
    }
    if (user.noPassword) throw Errors.NoPasswordUser();
    if (!(await checkPassword(req.password ?? "", user.password))) {
      this.#failures.failed(name);
      throw Errors.AuthFailed();
    }
    this.#failures.succeeded(name);
    const token = await ctx.proposer.assignToken({ user: user.name, revision: store.revision });
    return { header: ctx.header(ctx.view().rev()), token };
  }

  /**
   * etcd Auth.UserAdd: a user with `password` (bcrypt-hashed here) or, with
   * `options.no_password`, none.
   *
   * @throws {EtcdError} UserEmpty, UserAlreadyExist.
   */
  async userAdd(req: AuthUserAddRequest, creds?: Credentials): Promise<AuthHeaderResponse> {
    const name = req.name ?? "";
    if (name === "") throw Errors.UserEmpty();
    const noPassword = req.options?.no_password ?? false;
    const hashedPassword = noPassword ? "" : await hashPassword(req.password ?? "", this.#cost);
    return this.#change({ op: "user_add", name, hashedPassword, noPassword }, creds);
  }

  /**
   * etcd Auth.UserDelete.
   *
   * @throws {EtcdError} UserNotFound; InvalidAuthMgmt (root while auth is on).
   */
  async userDelete(req: AuthNameRequest, creds?: Credentials): Promise<AuthHeaderResponse> {
    return await this.#change({ op: "user_delete", name: req.name ?? "" }, creds);
  }

  /**
   * etcd Auth.UserChangePassword (the new password bcrypt-hashed here).
   *
   * @throws {EtcdError} UserNotFound.
   */
  async userChangePassword(
    req: AuthUserChangePasswordRequest,
    creds?: Credentials,
  ): Promise<AuthHeaderResponse> {
    const name = req.name ?? "";
    const hashedPassword = await hashPassword(req.password ?? "", this.#cost);
    return await this.#change({ op: "user_change_password", name, hashedPassword }, creds);
  }

  /**
   * etcd Auth.UserGrantRole (the `root` role need not exist).
   *
   * @throws {EtcdError} UserNotFound, RoleNotFound.
   */
  userGrantRole(req: AuthUserGrantRoleRequest, creds?: Credentials): Promise<AuthHeaderResponse> {
    return this.#change(
      { op: "user_grant_role", user: req.user ?? "", role: req.role ?? "" },
      creds,
    );
  }

  /**
   * etcd Auth.UserRevokeRole.
   *
   * @throws {EtcdError} UserNotFound, RoleNotGranted; InvalidAuthMgmt (root's root role while auth is on).
   */
  userRevokeRole(req: AuthUserRevokeRoleRequest, creds?: Credentials): Promise<AuthHeaderResponse> {
    return this.#change(
      { op: "user_revoke_role", name: req.name ?? "", role: req.role ?? "" },
      creds,
    );
  }

  /**
   * etcd Auth.UserGet: the user's roles, sorted.
   *
   * While auth is on, root may get any user, others only themselves.
   *
   * @throws {EtcdError} UserNotFound; InvalidAuthToken, UserEmpty, PermissionDenied (auth).
   */
  async userGet(req: AuthNameRequest, creds?: Credentials): Promise<AuthRolesResponse> {
    const name = req.name ?? "";
    const store = await this.#read(
      creds,
      (store, info) => (info?.user ?? "") === name ? undefined : adminPermission(store, info),
    );
    return { header: this.#header(), roles: store.userGet(name) };
  }

  /**
   * etcd Auth.UserList: every user's name, sorted.
   *
   * @throws {EtcdError} InvalidAuthToken, UserEmpty, PermissionDenied (auth: root only).
   */
  async userList(_req?: unknown, creds?: Credentials): Promise<AuthUserListResponse> {
    const store = await this.#read(creds, adminPermission);
    return { header: this.#header(), users: store.userList() };
  }

  /**
   * etcd Auth.RoleAdd.
   *
   * @throws {EtcdError} RoleEmpty, RoleAlreadyExist.
   */
  roleAdd(req: AuthNameRequest, creds?: Credentials): Promise<AuthHeaderResponse> {
    return this.#change({ op: "role_add", name: req.name ?? "" }, creds);
  }

  /**
   * etcd Auth.RoleDelete (also revoked from every user holding it).
   *
   * @throws {EtcdError} RoleNotFound; InvalidAuthMgmt (root while auth is on).
   */
  roleDelete(req: AuthRoleRequest, creds?: Credentials): Promise<AuthHeaderResponse> {
    return this.#change({ op: "role_delete", role: req.role ?? "" }, creds);
  }

  /**
   * etcd Auth.RoleGet: the role's permissions, in key order.
   *
   * While auth is on, root may get any role, others only roles they hold.
   *
   * @throws {EtcdError} RoleNotFound; InvalidAuthToken, UserEmpty, PermissionDenied (auth).
   */
  async roleGet(req: AuthRoleRequest, creds?: Credentials): Promise<AuthRoleGetResponse> {
    const role = req.role ?? "";
    const store = await this.#read(creds, (store, info) => {
      const held = store.user(info?.user ?? "")?.roles.includes(role) ?? false;
      return held ? undefined : adminPermission(store, info);
    });
    return { header: this.#header(), perm: store.roleGet(role) };
  }

  /**
   * etcd Auth.RoleList: every role's name, sorted.
   *
   * @throws {EtcdError} InvalidAuthToken, UserEmpty, PermissionDenied (auth: root only).
   */
  async roleList(_req?: unknown, creds?: Credentials): Promise<AuthRolesResponse> {
    const store = await this.#read(creds, adminPermission);
    return { header: this.#header(), roles: store.roleList() };
  }

  /**
   * etcd Auth.RoleGrantPermission: `perm` on its key and range_end (an
   * existing permission on the same range takes the new type).
   *
   * @throws {EtcdError} RoleNotFound.
   */
  roleGrantPermission(
    req: AuthRoleGrantPermissionRequest,
    creds?: Credentials,
  ): Promise<AuthHeaderResponse> {
    const perm = {
      permType: req.perm?.permType ?? "READ",
      key: req.perm?.key ?? new Uint8Array(),
      range_end: req.perm?.range_end ?? new Uint8Array(),
    };
    return this.#change({ op: "role_grant_permission", name: req.name ?? "", perm }, creds);
  }

  /**
   * etcd Auth.RoleRevokePermission: the permission on exactly `key` and `range_end`.
   *
   * @throws {EtcdError} RoleNotFound, PermissionNotGranted.
   */
  roleRevokePermission(
    req: AuthRoleRevokePermissionRequest,
    creds?: Credentials,
  ): Promise<AuthHeaderResponse> {
    return this.#change({
      op: "role_revoke_permission",
      role: req.role ?? "",
      key: req.key ?? new Uint8Array(),
      range_end: req.range_end ?? new Uint8Array(),
    }, creds);
  }

  /** Propose `change`; its response is a header at the current revision. */
  #change(change: AuthChange, creds: Credentials | undefined): Promise<AuthHeaderResponse> {
    // Only root changes the auth store while auth is on: checked here and
    // again at apply (etcd's needAdminPermission).
    return this.#ctx.proposeAs<AuthHeaderResponse>(
      creds,
      { type: "auth", auth: change },
      adminPermission,
    );
  }

  /**
   * The auth store once every acknowledged change is visible (a
   * linearizable read), after `check` let the caller read it.
   */
  async #read(
    creds: Credentials | undefined,
    check: (store: AuthStore, info: AuthInfo | undefined) => EtcdError | undefined,
  ): Promise<AuthStore> {
    await this.#ctx.linearizeRead(false);
    const info = await this.#ctx.identify(creds);
    this.#ctx.authorize(info, check);
    return this.store();
  }

  #header(): ResponseHeader {
    return this.#ctx.header(this.#ctx.view().rev());
  }
}

/**
 * Failed authentications per user name (beyond etcd, which checks every
 * attempt): each name has a bucket of AUTH_FAILURE_BURST attempts that a
 * failure empties by one and time refills by one every
 * AUTH_FAILURE_INTERVAL_MS; an empty bucket refuses attempts without
 * checking the password. A success empties the record. At most
 * MAX_TRACKED_AUTH_FAILURES names are tracked (the least recent dropped).
 */
class AuthFailureLimiter {
  readonly #now: () => number;
  /** Per name: attempts left and when that was computed (ms). */
  readonly #names = new Map<string, { left: number; at: number }>();

  constructor(now: () => number) {
    this.#now = now;
  }

  /** Whether an attempt for `name` is checked now. */
  mayTry(name: string): boolean {
    return this.#left(name) >= 1;
  }

  /** An attempt for `name` failed. */
  failed(name: string): void {
    const left = this.#left(name) - 1;
    this.#names.delete(name);
    if (this.#names.size >= MAX_TRACKED_AUTH_FAILURES) {
      this.#names.delete(this.#names.keys().next().value as string);
    }
    this.#names.set(name, { left: Math.max(0, left), at: this.#now() });
  }

  /** An attempt for `name` succeeded. */
  succeeded(name: string): void {
    this.#names.delete(name);
  }

  #left(name: string): number {
    const known = this.#names.get(name);
    if (known === undefined) return AUTH_FAILURE_BURST;
    const refilled = (this.#now() - known.at) / AUTH_FAILURE_INTERVAL_MS;
    return Math.min(AUTH_FAILURE_BURST, known.left + refilled);
  }
}
