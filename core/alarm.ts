/**
 * A member's raised alarms (etcd's alarm store), and what they forbid: while
 * a NOSPACE alarm is raised by any member, requests that add data fail with
 * `etcdserver: mvcc: database space exceeded`; while a CORRUPT alarm is, every
 * write fails with `etcdserver: corrupt cluster`. Reads keep working under
 * both, as in etcd. No I/O: the applier stores the list in the `meta` table.
 *
 * @module
 */
import type { AlarmMember, AlarmType, PutRequest, TxnRequest } from "./api/types.ts";
import { QUOTA_KV_OVERHEAD_BYTES } from "./limits.ts";
import { Errors, type EtcdError } from "./errors.ts";
import { invariant } from "./invariant.ts";

/** The kinds of write request an alarm can refuse (the applier's request kinds). */
export type GatedRequest =
  | { type: "put" }
  | { type: "delete_range" }
  | { type: "txn"; txn: TxnRequest }
  | { type: "compaction" }
  | { type: "lease_grant" }
  | { type: "lease_revoke" }
  | { type: string };

/** Whether a txn would add data: a put among its success or its failure ops (etcd's costTxn > 0). */
export function txnAddsData(txn: TxnRequest): boolean {
  const puts = (ops: TxnRequest["success"]) => (ops ?? []).some((op) => "request_put" in op);
  return puts(txn.success) || puts(txn.failure);
}

/** Bytes a put is assumed to add, in quota checks (etcd's costPut): its key, value and 256. */
export function putCost(req: PutRequest): number {
  return QUOTA_KV_OVERHEAD_BYTES + (req.key?.length ?? 0) + (req.value?.length ?? 0);
}

/**
 * Bytes a txn is assumed to add, in quota checks (etcd's costTxn): the puts
 * among its success ops or among its failure ops, whichever cost more
 * (nested txns are not counted, as in etcd).
 */
export function txnCost(req: TxnRequest): number {
  const cost = (ops: TxnRequest["success"]) =>
    (ops ?? []).reduce((n, op) => n + ("request_put" in op ? putCost(op.request_put) : 0), 0);
  return Math.max(cost(req.success), cost(req.failure));
}

/** The raised alarms, in the order they were raised. */
export class AlarmSet {
  #alarms: AlarmMember[] = [];

  /** The alarms stored as {@linkcode AlarmSet.encode} wrote them (undefined: none). */
  static decode(stored: unknown): AlarmSet {
    const set = new AlarmSet();
    if (stored === undefined) return set;
    invariant(typeof stored === "string", "alarms are stored as a JSON string");
    const list = JSON.parse(stored) as [string, AlarmType][];
    for (const [id, alarm] of list) set.#alarms.push({ memberID: BigInt(id), alarm });
    return set;
  }

  /** The form {@linkcode AlarmSet.decode} reads. */
  encode(): string {
    return JSON.stringify(this.#alarms.map((a) => [a.memberID.toString(), a.alarm]));
  }

  /** The alarms of kind `alarm` ("NONE": every alarm), as etcd's alarm GET lists them. */
  get(alarm: AlarmType = "NONE"): AlarmMember[] {
    return this.#alarms.filter((a) => alarm === "NONE" || a.alarm === alarm).map((a) => ({ ...a }));
  }

  /** Whether any member raised an alarm of kind `alarm`. */
  has(alarm: AlarmType): boolean {
    return this.#alarms.some((a) => a.alarm === alarm);
  }

  /** Number of raised alarms. */
  get size(): number {
    return this.#alarms.length;
  }

  /**
   * Raise `alarm` for `memberID`; returns the alarm as stored (the earlier
   * one when it was already raised: etcd answers it either way) and whether
   * it is new.
   */
  activate(memberID: bigint, alarm: AlarmType): { alarm: AlarmMember; added: boolean } {
    invariant(alarm !== "NONE", "an alarm has a kind");
    const known = this.#alarms.find((a) => a.memberID === memberID && a.alarm === alarm);
    if (known !== undefined) return { alarm: { ...known }, added: false };
    const added = { memberID, alarm };
    this.#alarms.push(added);
    return { alarm: { ...added }, added: true };
  }

  /** Clear `alarm` of `memberID`; returns it, or undefined when it was not raised. */
  deactivate(memberID: bigint, alarm: AlarmType): AlarmMember | undefined {
    const i = this.#alarms.findIndex((a) => a.memberID === memberID && a.alarm === alarm);
    if (i < 0) return undefined;
    const [removed] = this.#alarms.splice(i, 1);
    return removed;
  }

  /**
   * The error a write request gets while these alarms are raised, or
   * undefined when it may apply. CORRUPT refuses puts, deletes, txns,
   * compactions, lease grants and revokes (etcd's applierV3Corrupt); NOSPACE
   * refuses puts, txns that put and lease grants (etcd's applierV3Capped).
   */
  refuse(req: GatedRequest): EtcdError | undefined {
    if (this.#alarms.length === 0) return undefined;
    if (this.has("CORRUPT")) {
      switch (req.type) {
        case "put":
        case "delete_range":
        case "txn":
        case "compaction":
        case "lease_grant":
        case "lease_revoke":
          return Errors.Corrupt();
      }
    }
    if (this.has("NOSPACE")) {
      if (req.type === "put" || req.type === "lease_grant") return Errors.NoSpace();
      if (req.type === "txn" && "txn" in req && txnAddsData(req.txn)) return Errors.NoSpace();
    }
    return undefined;
  }
}

/**
 * An alarm in the gogoproto compact text form of AlarmMember, as etcd's
 * Status lists it in `errors` and etcdctl's `alarm list` prints it:
 * `memberID:<decimal uint64> alarm:<TYPE> `, trailing space included, a
 * field left out when it is zero (member 0, alarm NONE).
 */
export function alarmText(a: AlarmMember): string {
  const id = BigInt.asUintN(64, a.memberID);
  return (id === 0n ? "" : `memberID:${id} `) + (a.alarm === "NONE" ? "" : `alarm:${a.alarm} `);
}
