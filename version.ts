/** cairn's own release version (reported as "cairn" by GET /version). */
export const CAIRN_VERSION = "0.1.0";
