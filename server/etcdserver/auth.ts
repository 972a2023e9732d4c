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
import { SimpleTokens, type TokenInfo } from "../../core/auth/simple_token.ts";
import { Errors } from "../../core/errors.ts";
import { DEFAULT_AUTH_TOKEN_TTL_S } from "../../core/limits.ts";
import type { ServiceContext } from "./context.ts";

/** Options of {@linkcode AuthServer}: etcd's auth flags. */
export interface AuthOptions {
  /** --bcrypt-cost: cost of password hashes, 4–31 (others: 10). Default 10. */
  bcryptCost?: number;
  /** --auth-token-ttl: seconds a `simple` token lives after its last use. Default 300. */
  authTokenTtlSeconds?: number;
  /** The clock tokens expire by, in ms. Default `Date.now`. */
  tokenClock?: () => number;
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
  readonly #tokens: SimpleTokens;

  /** The Auth service over a member's shared service context. */
  constructor(ctx: ServiceContext, options: AuthOptions = {}) {
    this.#ctx = ctx;
    this.#cost = bcryptCost(options.bcryptCost);
    this.#tokens = new SimpleTokens({
      ttlSeconds: options.authTokenTtlSeconds ?? DEFAULT_AUTH_TOKEN_TTL_S,
      now: options.tokenClock ?? Date.now,
      random: (n) => crypto.getRandomValues(new Uint8Array(n)),
    });
  }

  /** The auth store as committed (after a linearizing wait: every acknowledged change). */
  store(): AuthStore {
    return this.#ctx.auth();
  }

  /**
   * What a `simple` token this member issued stands for; undefined when it
   * is unknown here or expired (etcd: `etcdserver: invalid auth token`).
   */
  tokenInfo(token: string): TokenInfo | undefined {
    return this.#tokens.info(token);
  }

  /**
   * etcd Auth.AuthEnable: turn authentication on.
   *
   * @throws {EtcdError} RootUserNotExist, RootRoleNotExist; NoLeader, Timeout.
   */
  authEnable(): Promise<AuthHeaderResponse> {
    return this.#change({ op: "enable" });
  }

  /** etcd Auth.AuthDisable: turn authentication off (no change when it is off). */
  async authDisable(): Promise<AuthHeaderResponse> {
    const resp = await this.#change({ op: "disable" });
    this.#tokens.clear();
    return resp;
  }

  /**
   * etcd Auth.Authenticate: a `simple` token for `name` when `password` is
   * its password, valid on this member for --auth-token-ttl seconds after
   * its last use.
   *
   * @throws {EtcdError} AuthNotEnabled (auth off); AuthFailed (unknown user,
   *   wrong password); NoPasswordUser (a user added with `no_password`).
   */
  async authenticate(req: AuthenticateRequest): Promise<AuthenticateResponse> {
    const ctx = this.#ctx;
    await ctx.linearizeRead(false);
    const store = this.store();
    if (!store.enabled) throw Errors.AuthNotEnabled();
    const user = store.user(req.name ?? "");
    if (user === undefined) throw Errors.AuthFailed();
    if (user.noPassword) throw Errors.NoPasswordUser();
    if (!(await checkPassword(req.password ?? "", user.password))) throw Errors.AuthFailed();
    const token = this.#tokens.assign({ user: user.name, revision: store.revision });
    return { header: ctx.header(ctx.view().rev()), token };
  }

  /**
   * etcd Auth.UserAdd: a user with `password` (bcrypt-hashed here) or, with
   * `options.no_password`, none.
   *
   * @throws {EtcdError} UserEmpty, UserAlreadyExist.
   */
  async userAdd(req: AuthUserAddRequest): Promise<AuthHeaderResponse> {
    const name = req.name ?? "";
    if (name === "") throw Errors.UserEmpty();
    const noPassword = req.options?.no_password ?? false;
    const hashedPassword = noPassword ? "" : await hashPassword(req.password ?? "", this.#cost);
    return this.#change({ op: "user_add", name, hashedPassword, noPassword });
  }

  /**
   * etcd Auth.UserDelete.
   *
   * @throws {EtcdError} UserNotFound; InvalidAuthMgmt (root while auth is on).
   */
  async userDelete(req: AuthNameRequest): Promise<AuthHeaderResponse> {
    const resp = await this.#change({ op: "user_delete", name: req.name ?? "" });
    this.#tokens.invalidateUser(req.name ?? "");
    return resp;
  }

  /**
   * etcd Auth.UserChangePassword (the new password bcrypt-hashed here).
   *
   * @throws {EtcdError} UserNotFound.
   */
  async userChangePassword(req: AuthUserChangePasswordRequest): Promise<AuthHeaderResponse> {
    const name = req.name ?? "";
    const hashedPassword = await hashPassword(req.password ?? "", this.#cost);
    const resp = await this.#change({ op: "user_change_password", name, hashedPassword });
    this.#tokens.invalidateUser(name);
    return resp;
  }

  /**
   * etcd Auth.UserGrantRole (the `root` role need not exist).
   *
   * @throws {EtcdError} UserNotFound, RoleNotFound.
   */
  userGrantRole(req: AuthUserGrantRoleRequest): Promise<AuthHeaderResponse> {
    return this.#change({ op: "user_grant_role", user: req.user ?? "", role: req.role ?? "" });
  }

  /**
   * etcd Auth.UserRevokeRole.
   *
   * @throws {EtcdError} UserNotFound, RoleNotGranted; InvalidAuthMgmt (root's root role while auth is on).
   */
  userRevokeRole(req: AuthUserRevokeRoleRequest): Promise<AuthHeaderResponse> {
    return this.#change({ op: "user_revoke_role", name: req.name ?? "", role: req.role ?? "" });
  }

  /**
   * etcd Auth.UserGet: the user's roles, sorted.
   *
   * @throws {EtcdError} UserNotFound.
   */
  async userGet(req: AuthNameRequest): Promise<AuthRolesResponse> {
    const store = await this.#read();
    return { header: this.#header(), roles: store.userGet(req.name ?? "") };
  }

  /** etcd Auth.UserList: every user's name, sorted. */
  async userList(): Promise<AuthUserListResponse> {
    const store = await this.#read();
    return { header: this.#header(), users: store.userList() };
  }

  /**
   * etcd Auth.RoleAdd.
   *
   * @throws {EtcdError} RoleEmpty, RoleAlreadyExist.
   */
  roleAdd(req: AuthNameRequest): Promise<AuthHeaderResponse> {
    return this.#change({ op: "role_add", name: req.name ?? "" });
  }

  /**
   * etcd Auth.RoleDelete (also revoked from every user holding it).
   *
   * @throws {EtcdError} RoleNotFound; InvalidAuthMgmt (root while auth is on).
   */
  roleDelete(req: AuthRoleRequest): Promise<AuthHeaderResponse> {
    return this.#change({ op: "role_delete", role: req.role ?? "" });
  }

  /**
   * etcd Auth.RoleGet: the role's permissions, in key order.
   *
   * @throws {EtcdError} RoleNotFound.
   */
  async roleGet(req: AuthRoleRequest): Promise<AuthRoleGetResponse> {
    const store = await this.#read();
    return { header: this.#header(), perm: store.roleGet(req.role ?? "") };
  }

  /** etcd Auth.RoleList: every role's name, sorted. */
  async roleList(): Promise<AuthRolesResponse> {
    const store = await this.#read();
    return { header: this.#header(), roles: store.roleList() };
  }

  /**
   * etcd Auth.RoleGrantPermission: `perm` on its key and range_end (an
   * existing permission on the same range takes the new type).
   *
   * @throws {EtcdError} RoleNotFound.
   */
  roleGrantPermission(req: AuthRoleGrantPermissionRequest): Promise<AuthHeaderResponse> {
    const perm = {
      permType: req.perm?.permType ?? "READ",
      key: req.perm?.key ?? new Uint8Array(),
      range_end: req.perm?.range_end ?? new Uint8Array(),
    };
    return this.#change({ op: "role_grant_permission", name: req.name ?? "", perm });
  }

  /**
   * etcd Auth.RoleRevokePermission: the permission on exactly `key` and `range_end`.
   *
   * @throws {EtcdError} RoleNotFound, PermissionNotGranted.
   */
  roleRevokePermission(req: AuthRoleRevokePermissionRequest): Promise<AuthHeaderResponse> {
    return this.#change({
      op: "role_revoke_permission",
      role: req.role ?? "",
      key: req.key ?? new Uint8Array(),
      range_end: req.range_end ?? new Uint8Array(),
    });
  }

  /** Propose `change`; its response is a header at the current revision. */
  #change(change: AuthChange): Promise<AuthHeaderResponse> {
    return this.#ctx.propose<AuthHeaderResponse>({ type: "auth", auth: change });
  }

  /** The auth store once every acknowledged change is visible (a linearizable read). */
  async #read(): Promise<AuthStore> {
    await this.#ctx.linearizeRead(false);
    return this.store();
  }

  #header(): ResponseHeader {
    return this.#ctx.header(this.#ctx.view().rev());
  }
}
