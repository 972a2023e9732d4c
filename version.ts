/** cairn's own release version (reported as "cairn" by GET /version). */
export const CAIRN_VERSION = "0.1.0";

/** The etcd API version cairn speaks (GET /version, Maintenance.Status). */
export const ETCD_API_VERSION = "3.4.0";
