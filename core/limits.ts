/**
 * Every bound of a cairn member in one place: queues, in-flight windows,
 * batch sizes, log retention, buffer sizes. Each is a count or a size in
 * bytes as its name says. The assertions at the bottom tie related bounds
 * together, so changing one bound cannot silently break another; they run
 * when this module loads.
 *
 * etcd's own defaults that are user-visible flags (--max-request-bytes,
 * --max-txn-ops, --snapshot-count…) live with the flag table in
 * server/config.ts; this module holds the bounds cairn adds.
 *
 * @module
 */
import { invariant } from "./invariant.ts";

/** Proposals waiting for the raft node's next Ready, at most (then `too many requests`). */
export const MAX_PENDING_PROPOSALS = 10_000;
/** Entries appended and applied in one Ready (one WAL write, one sync), at most. */
export const MAX_BATCH_ENTRIES = 1_000;
/**
 * Milliseconds between the starts of two LMDB commits, at least, while
 * writes keep coming: each commit syncs the data file, competing with the
 * WAL's fdatasync for the disk; transactions queued meanwhile merge into
 * one commit. A read that waits for answered writes asks for their commit
 * at once (Backend.commitSoon), so reads do not wait for the interval.
 */
export const LMDB_COMMIT_INTERVAL_MS = 5;
/**
 * Applied batches whose LMDB commit is not done yet, at most. The backend
 * coalesces the ones queued behind a commit in progress into its next
 * commit, and fails them all if a commit fails (so none skips an earlier
 * one); reads inside the applier walk this many overlays.
 */
export const MAX_INFLIGHT_BATCHES = 64;
/**
 * Bytes gRPC allows over `--max-request-bytes` (etcd's `grpcOverheadBytes`):
 * its receive limit is --max-request-bytes plus this, and etcd's watch
 * server splits fragmenting responses at the same size.
 */
export const GRPC_OVERHEAD_BYTES = 512 * 1024;
/**
 * grpc-js buffers a gRPC message up to this many times etcd's receive limit
 * (--max-request-bytes + GRPC_OVERHEAD_BYTES) before it refuses it itself;
 * below that the gRPC transport refuses an oversized message with etcd's own
 * error text.
 */
export const GRPC_MAX_RECEIVE_FACTOR = 2;
/** Keys or events Maintenance.HashKV reads from the store at a time. */
export const HASH_READ_CHUNK = 1_000;
/** Bytes of the member's copy in each Maintenance.Snapshot message (etcd's snapshotSendBufferSize). */
export const SNAPSHOT_CHUNK_BYTES = 32 * 1024;
/**
 * Bytes of one `/v3/maintenance/snapshot` line a Client holds while reading
 * it, at most (a chunk of SNAPSHOT_CHUNK_BYTES is about 44 KiB of base64; a
 * server sending larger chunks is read up to this). A longer line ends the
 * snapshot with gRPC's `received message larger than max`.
 */
export const MAX_SNAPSHOT_LINE_BYTES = 4 * 1024 * 1024;
/** Bytes read at a time when a snapshot file is hashed, copied or restored. */
export const SNAPSHOT_FILE_CHUNK_BYTES = 1024 * 1024;
/**
 * Bytes of a connection's first data the client port waits for to tell
 * HTTP/2 (gRPC) from HTTP/1.1 (the JSON gateway); "PRI" against a method name.
 */
export const CLIENT_PREFACE_PEEK_BYTES = 3;
/** Days a certificate made by --auto-tls is valid: etcd's one year. */
export const AUTO_TLS_VALIDITY_DAYS = 365;
/**
 * Milliseconds between two looks at a TLS listener's or peer client's
 * certificate files (--cert-file, --key-file, --trusted-ca-file and the
 * --peer-* ones), at most: a new connection after a change on disk is served
 * with the new certificate once this long has passed since the last look.
 * etcd reads the files at every handshake; cairn looks at most this often,
 * so a burst of connections costs one stat of each file.
 */
export const TLS_RELOAD_CHECK_MS = 1_000;
/**
 * Bytes of a TLS connection's first record (the ClientHello) a listener with
 * --cipher-suites reads to see which cipher suites the client offers; a
 * ClientHello longer than this is refused (they are a few hundred bytes).
 */
export const TLS_CLIENT_HELLO_MAX_BYTES = 16 * 1024 + 5;
/**
 * Milliseconds a member with --peer-auto-tls waits for a peer's
 * self-signed certificate when it first reaches the peer (a TLS handshake
 * that only reads the certificate).
 */
export const PEER_CERT_FETCH_TIMEOUT_MS = 5_000;
/**
 * Milliseconds a stopping client port gives its relayed connections to send
 * what they hold and close, before it closes them.
 */
export const CLIENT_CLOSE_GRACE_MS = 1_000;
/**
 * Milliseconds a client connection may take to send its first bytes (on an
 * https URL: to finish the TLS handshake and send them) before it is closed.
 */
export const CLIENT_PREFACE_TIMEOUT_MS = 10_000;
/**
 * Bytes of an HTTP/2 connection's first frames the client port holds, at
 * most (plus the read that crosses it), while it waits for the first
 * request's headers to see their `:authority` (server/grpc/authority.ts). A
 * connection that has not sent them within this many bytes is served
 * through the `:authority` rewriter.
 */
export const HTTP2_FIRST_REQUEST_PEEK_BYTES = 16 * 1024;
/**
 * Milliseconds the client port waits for an HTTP/2 connection's first
 * request headers (see HTTP2_FIRST_REQUEST_PEEK_BYTES) before it serves the
 * connection through the `:authority` rewriter. The client's frames wait
 * unanswered meanwhile, so this stays below gRPC's shortest keep-alive
 * interval (10 s): a client's keep-alive ping never times out on it.
 */
export const HTTP2_FIRST_REQUEST_TIMEOUT_MS = 5_000;
/**
 * Milliseconds the client port waits, after an HTTP/2 client acknowledged
 * cairn's SETTINGS, for its first request before serving it through the
 * `:authority` rewriter: a client that sends none yet is waiting for its own
 * SETTINGS to be acknowledged (Go's gRPC sends its first request at once).
 */
export const HTTP2_FIRST_REQUEST_AFTER_ACK_MS = 20;
/**
 * Bytes of one header block (a HEADERS frame's fragment and its
 * CONTINUATION frames', as the client sent them) that the `:authority`
 * rewriter holds, at most; a larger block closes the connection.
 */
export const MAX_REWRITTEN_HEADER_BLOCK_BYTES = 64 * 1024;
/**
 * Bytes of one decoded header list (names, values and 32 per field, as
 * HTTP/2's SETTINGS_MAX_HEADER_LIST_SIZE counts them) that the `:authority`
 * rewriter decodes, at most; a larger list closes the connection (the gRPC
 * server refuses a request with more than about 64 KiB of headers anyway).
 */
export const MAX_REWRITTEN_HEADER_LIST_BYTES = 64 * 1024;
/**
 * Responses a watch stream holds for a client that has not read them yet, at
 * most (etcd's per-stream buffer of 128). A watcher whose response does not
 * fit falls behind and later catches up from the stored history.
 */
export const MAX_WATCH_STREAM_RESPONSES = 128;
/** Events a watch stream holds for its client, at most (see MAX_WATCH_STREAM_RESPONSES). */
export const MAX_WATCH_STREAM_EVENTS = 10_000;
/** Events read from the stored history per catch-up step of watchers that are behind (whole revisions). */
export const MAX_WATCH_SYNC_EVENTS = 10_000;
/**
 * Bytes of applied changes sent to one HTTP worker thread and not yet taken
 * by it, at most. Past this, the worker is sent only the revision, and its
 * watchers catch up from the stored history.
 */
export const MAX_FEED_BACKLOG_BYTES = 64 * 1024 * 1024;
/** Bytes of a streaming request body (watch, lease keep-alive) not yet parsed into requests, at most. */
export const MAX_STREAM_REQUEST_BUFFER_BYTES = 8 * 1024 * 1024;
/**
 * Milliseconds a Client watch waits before reconnecting once every endpoint
 * has failed in a row, at first; the wait doubles with each further round
 * of failures, up to WATCH_RETRY_MAX_MS. A failover to an endpoint not yet
 * tried in the round does not wait.
 */
export const WATCH_RETRY_MIN_MS = 50;
/** Milliseconds a Client watch waits between reconnection rounds, at most. */
export const WATCH_RETRY_MAX_MS = 2_000;
/**
 * Attempts one unary Client call makes at most, the first included, across
 * its endpoints (each retry goes to the next endpoint in turn). Only
 * failures that allow a retry count (see client/mod.ts); the call's timeout
 * ends it sooner.
 */
export const CLIENT_MAX_ATTEMPTS = 10;
/**
 * Milliseconds a Client call waits before a retry once every endpoint has
 * failed in this call, at first; the wait doubles with each further retry,
 * up to CLIENT_RETRY_MAX_MS. A retry on an endpoint not yet tried in the
 * call does not wait.
 */
export const CLIENT_RETRY_MIN_MS = 25;
/** Milliseconds a Client call waits before a retry, at most. */
export const CLIENT_RETRY_MAX_MS = 500;
/**
 * Bytes of one watch response a Client holds while reading it (one JSON
 * line, or every fragment of a fragmented response), at most. A larger
 * response ends the watch with gRPC's `received message larger than max`.
 */
export const MAX_WATCH_RESPONSE_BYTES = 128 * 1024 * 1024;
/**
 * Bytes of one `/v3/election/observe` line a Client holds while reading it,
 * at most (a leader's key-value plus its header). A longer line ends the
 * observation with gRPC's `received message larger than max`.
 */
export const MAX_OBSERVE_LINE_BYTES = 16 * 1024 * 1024;
/** The largest lease TTL a grant may ask for, in seconds (etcd's MaxLeaseTTL). */
export const MAX_LEASE_TTL_SECONDS = 9_000_000_000;
/**
 * Milliseconds between checks for expired leases: a lease's keys go at most
 * this long (plus one proposal) after its TTL, never before.
 */
export const LEASE_EXPIRY_POLL_MS = 50;
/**
 * Milliseconds a lease lives past its TTL, counted from when its grant or
 * keep-alive is applied: the client hears the answer a little later, and a
 * lease must never expire before TTL seconds after that answer.
 */
export const LEASE_EXPIRY_SLACK_MS = 50;
/** Keep-alive requests of one stream renewed together (those already received), at most. */
export const MAX_KEEPALIVE_BATCH = 256;
/** Lease revocations proposed per event-loop turn when many leases expire at once. */
export const LEASE_REVOKE_BATCH = 1_000;
/** Leases whose remaining TTL one checkpoint entry records, at most (etcd's maxLeaseCheckpointBatchSize). */
export const LEASE_CHECKPOINT_BATCH = 1_000;
/**
 * Milliseconds between checkpoints of remaining lease TTLs. A restart gives
 * each lease what it had at the last checkpoint (so at most this much, plus
 * the downtime, more than it had left).
 */
export const LEASE_CHECKPOINT_INTERVAL_MS = 5_000;
/**
 * Leases checkpointed per interval, at most; with more leases, each waits
 * its turn (so with 100,000 leases each is recorded about every 50 s).
 */
export const LEASE_CHECKPOINTS_PER_ROUND = 10_000;
/**
 * Milliseconds a lease keep-alive (client/lease.ts) waits before trying
 * again after a failed renewal (clientv3's retryConnWait); it keeps trying
 * until the lease's TTL since the last renewal has passed.
 */
export const KEEPALIVE_RETRY_MS = 500;
/**
 * Keep-alive responses a lease keep-alive holds for its reader, at most
 * (clientv3's LeaseResponseChSize); when full, the oldest is dropped.
 */
export const MAX_KEEPALIVE_BUFFER = 16;
/** Proposals one HTTP worker thread has forwarded and not yet seen answered, at most. */
export const MAX_WORKER_INFLIGHT = 4_000;
/** HTTP worker threads per client URL, at most (--http-workers). */
export const MAX_HTTP_WORKERS = 16;
/**
 * Bytes of the reserve file a member keeps on its data disk, given up when
 * the disk is full so that answered writes can still be committed.
 */
export const DISK_RESERVE_BYTES = 16 * 1024 * 1024;
/** Reads of one thread waiting for answered writes to become visible, at most. */
export const MAX_WAITING_READS = 100_000;
/**
 * ReadIndex results (Raft read states) one member holds until its applied
 * index reaches them, at most: one per ReadIndex request in flight.
 */
export const MAX_PENDING_READ_STATES = 10_000;
/** Milliseconds between attempts to commit applied entries again after a failed LMDB commit. */
export const STORAGE_RETRY_MS = 1000;
/**
 * Raft log entries kept behind the applied index when the log is compacted
 * (etcd's snapshotCatchUpEntries), so a slow follower can catch up from the
 * log rather than from a snapshot.
 */
export const SNAPSHOT_CATCHUP_ENTRIES = 5_000;
/**
 * Bytes of entry data the in-memory Raft log (and the WAL behind it) holds
 * at most before it is compacted, whatever --snapshot-count says: entries
 * can be as large as --max-request-bytes, so a count alone bounds nothing.
 */
export const MAX_RETAINED_LOG_BYTES = 64 * 1024 * 1024;
/** Bytes each WAL segment file is preallocated to (zero-filled, so an fdatasync need not update the file size). */
export const WAL_SEGMENT_BYTES = 16 * 1024 * 1024;
/** Bytes written per call while zero-filling a WAL segment. */
export const WAL_ZERO_CHUNK_BYTES = 1024 * 1024;
/** History records removed per write transaction by an MVCC compaction. */
export const HISTORY_COMPACTION_BATCH = 10_000;
/** Arena chunk in bytes that small keys and values read from LMDB are copied into. */
export const READ_ARENA_BYTES = 64 * 1024;
/** Keys and values longer than this (bytes) get a buffer of their own instead of arena space. */
export const READ_ARENA_MAX_COPY = 4096;
/**
 * Bytes per LMDB page of a new environment. 8 KiB holds seven 1 KiB records
 * where 4 KiB holds three; LMDB's page splits leave a page short of one record
 * or half empty, which costs less of a larger page (bench/README.md, Storage
 * footprint: 4 KiB and 16 KiB pages both made the store larger).
 */
export const LMDB_PAGE_BYTES = 8192;
/** Initial LMDB map size in bytes; LMDB grows it when full. */
export const INITIAL_MAP_BYTES = 256 * 1024 * 1024;
/**
 * Levels of txn nesting (the outer txn is level 1) a request may have, at
 * most; deeper gets etcd's `too many operations in txn request`. etcd
 * allows `--max-txn-ops + 1` levels; cairn's checks, apply and encoders
 * recurse once per level, and this bound keeps that well inside the JS stack
 * of any thread (tests/unit/service_parity_test.ts runs a txn this deep
 * through the gateway and the embedded store). server/config.ts asserts
 * that etcd's default --max-txn-ops stays within it.
 */
export const MAX_TXN_DEPTH = 256;
/**
 * Raft messages queued for one peer and not yet in a request, at most
 * (etcd's streamBufSize). Past this, or past MAX_PEER_QUEUE_BYTES, new
 * messages to that peer are dropped and Raft resends them.
 */
export const MAX_PEER_QUEUE_MESSAGES = 4_096;
/** Bytes of Raft messages queued for one peer (estimated from entry and context sizes), at most. */
export const MAX_PEER_QUEUE_BYTES = 64 * 1024 * 1024;
/**
 * Bytes of messages one peer request carries, at most, unless a single
 * message is larger (it then goes alone): a heartbeat queued behind a batch
 * waits for at most this much to cross the network.
 */
export const MAX_PEER_REQUEST_BYTES = 4 * 1024 * 1024;
/**
 * Message requests to one peer in flight, at most (etcd's connPerPipeline):
 * requests are numbered and the receiver delivers them in order, so this is
 * also how many batches a receiver holds per sender while an earlier one is
 * still arriving.
 */
export const MAX_PEER_INFLIGHT_REQUESTS = 4;
/** Bytes of one received message request body, at most (larger gets HTTP 413). */
export const MAX_PEER_BODY_BYTES = 128 * 1024 * 1024;
/** Peers whose message order one transport tracks on the receiving side, at most. */
export const MAX_PEER_SENDERS = 1_024;
/** Milliseconds a peer message request may take, at most (then the batch is dropped). */
export const PEER_REQUEST_TIMEOUT_MS = 5_000;
/** Milliseconds streaming one snapshot to a peer may take, at most (then it failed). */
export const PEER_SNAPSHOT_TIMEOUT_MS = 10 * 60_000;
/** Ranges with more kvs than this are streamed as JSON chunks. */
export const STREAM_KVS_THRESHOLD = 512;
/** Approximate bytes of one streamed JSON chunk. */
export const STREAM_CHUNK_BYTES = 64 * 1024;
/**
 * Milliseconds a request may take before it is logged as slow (etcd's
 * `--experimental-warning-apply-duration` default, 100 ms): an applied entry
 * ("apply request took too long") or a read-only range or txn, counted from
 * its arrival to its answer.
 */
export const WARNING_APPLY_DURATION_MS = 100;
/**
 * Milliseconds a thread waits for another thread's log line to be written
 * before writing its own anyway: lines from every thread share one lock
 * (server/log.ts), and a thread ended while holding it must not stop the
 * others' logging.
 */
export const LOG_LOCK_TIMEOUT_MS = 5_000;
/**
 * Entries with the same level and message logged in one second before zap's
 * sampling (etcd's logger configuration) starts: past it, only every
 * `LOG_SAMPLE_THEREAFTER`th is written until the second ends.
 */
export const LOG_SAMPLE_INITIAL = 100;
/** One in this many entries is written past `LOG_SAMPLE_INITIAL` in a second. */
export const LOG_SAMPLE_THEREAFTER = 100;
/** Distinct level-and-message pairs sampled in one second, at most; others are written unsampled. */
export const MAX_LOG_SAMPLE_KEYS = 4_096;

// Every worker may fill its window at once; the node's queue must take them all,
// or a full queue would turn a burst from well-behaved workers into errors.
invariant(
  MAX_WORKER_INFLIGHT * 2 <= MAX_PENDING_PROPOSALS,
  "the default two workers' in-flight proposals fit in the node's proposal queue",
);
invariant(
  SNAPSHOT_CATCHUP_ENTRIES >= MAX_BATCH_ENTRIES,
  "the log kept for catching up holds at least one whole batch",
);
invariant(
  MAX_RETAINED_LOG_BYTES >= 4 * WAL_SEGMENT_BYTES,
  "the retained log spans several WAL segments, so releasing segments keeps pace",
);
invariant(READ_ARENA_MAX_COPY < READ_ARENA_BYTES, "an arena copy fits in one arena chunk");
invariant(
  HTTP2_FIRST_REQUEST_PEEK_BYTES >= 24 + 9 + 9,
  "the first-request peek holds HTTP/2's preface and at least a frame past its SETTINGS",
);
invariant(
  HTTP2_FIRST_REQUEST_TIMEOUT_MS < 10_000,
  "a client's keep-alive ping does not wait out the first-request peek",
);
invariant(
  WAL_SEGMENT_BYTES % WAL_ZERO_CHUNK_BYTES === 0,
  "a WAL segment is a whole number of zero-fill chunks",
);
invariant(
  0 < WATCH_RETRY_MIN_MS && WATCH_RETRY_MIN_MS <= WATCH_RETRY_MAX_MS,
  "a watch's reconnection wait grows from its minimum to its maximum",
);
invariant(CLIENT_MAX_ATTEMPTS >= 2, "a Client call can move on to a second endpoint");
invariant(
  0 < CLIENT_RETRY_MIN_MS && CLIENT_RETRY_MIN_MS <= CLIENT_RETRY_MAX_MS,
  "a Client call's retry wait grows from its minimum to its maximum",
);
invariant(
  2 * KEEPALIVE_RETRY_MS < (2_000 * 2) / 3,
  "two retries fit between a renewal at TTL/3 and the expiry of a lease of the minimum TTL (2 s)",
);
invariant(MAX_KEEPALIVE_BUFFER >= 1, "a keep-alive holds at least its latest response");
invariant(MAX_INFLIGHT_BATCHES >= 1, "at least one batch can be written");
invariant(
  LMDB_PAGE_BYTES >= 4096 && LMDB_PAGE_BYTES <= 65536 &&
    (LMDB_PAGE_BYTES & (LMDB_PAGE_BYTES - 1)) === 0,
  "LMDB pages are a power of two from 4 KiB to 64 KiB",
);
invariant(INITIAL_MAP_BYTES % LMDB_PAGE_BYTES === 0, "the LMDB map is a whole number of pages");

/**
 * How long a proposal or a ReadIndex waits for its answer before it fails
 * with `etcdserver: request timed out`, beyond 2 election timeouts (etcd's
 * ReqTimeout: 5 s + 2 × election timeout).
 */
export const REQUEST_TIMEOUT_BASE_MS = 5_000;

/** A ReadIndex request unanswered for this long is sent again with a fresh ID (etcd: 500 ms). */
export const READ_INDEX_RETRY_MS = 500;

/** ReadIndex requests of one member waiting for their answer, at most (each serves a batch of reads). */
export const MAX_PENDING_READ_INDEX = 1_000;
invariant(MAX_PEER_INFLIGHT_REQUESTS >= 1, "at least one request to a peer can be in flight");
invariant(
  MAX_PEER_REQUEST_BYTES <= MAX_PEER_QUEUE_BYTES && MAX_PEER_QUEUE_BYTES < MAX_PEER_BODY_BYTES,
  "a batch, at most the whole peer queue (a message larger than the queue is dropped), fits in a received body",
);
invariant(
  PEER_REQUEST_TIMEOUT_MS <= PEER_SNAPSHOT_TIMEOUT_MS,
  "a snapshot may take at least as long as a message request",
);

/** Milliseconds between attempts of a starting member to publish its name and client URLs. */
export const PUBLISH_RETRY_MS = 100;

/** A member logs requests of another cluster (cluster ID mismatch) at most once per this many ms. */
export const PEER_MISMATCH_LOG_MS = 10_000;

/**
 * Bytes of framed messages a member's stream to one peer holds before the
 * connection takes them (then messages wait in the peer's queue, bounded by
 * MAX_PEER_QUEUE_MESSAGES and MAX_PEER_QUEUE_BYTES).
 */
export const MAX_PEER_STREAM_BUFFER_BYTES = 4 * 1024 * 1024;

/** After a peer's WebSocket failed, no new one before this many ms (later sends try again). */
export const PEER_RECONNECT_MS = 50;

/** etcd's DefaultQuotaBytes: the backend quota when --quota-backend-bytes is 0 (2 GiB). */
export const DEFAULT_QUOTA_BACKEND_BYTES = 2 * 1024 * 1024 * 1024;

/** etcd's MaxQuotaBytes: a larger --quota-backend-bytes is logged as too large (8 GiB). */
export const MAX_QUOTA_BACKEND_BYTES = 8 * 1024 * 1024 * 1024;

/** etcd's kvOverhead: bytes a put is assumed to cost beyond its key and value, in quota checks. */
export const QUOTA_KV_OVERHEAD_BYTES = 256;

/** etcd's leaseOverhead: bytes a lease grant is assumed to cost, in quota checks. */
export const QUOTA_LEASE_OVERHEAD_BYTES = 64;

/**
 * Milliseconds a measured store size serves quota checks before it is
 * measured again (measuring reads every table's page counts, ~40 µs, too
 * much for every put); in between, each write let through adds its cost.
 */
export const QUOTA_SIZE_REFRESH_MS = 100;

/**
 * Bytes of log entries a defragmentation's copy applies per transaction
 * while it catches up with the store (server/raftnode/node.ts).
 */
export const MAX_CATCH_UP_BYTES = 4 * 1024 * 1024;

/**
 * Milliseconds an HTTP worker has to close the store when a
 * defragmentation swaps its file; past it the swap is abandoned.
 */
export const DEFRAG_SUSPEND_TIMEOUT_MS = 5000;

/**
 * Deepest bbolt B+tree server/snapshot/bbolt.ts walks (root page = depth 1).
 * bbolt's trees are a few levels deep (a 2 GiB file with 4 KiB pages needs
 * fewer than 10); deeper means a damaged file whose pages point in a loop.
 */
export const BBOLT_MAX_TREE_DEPTH = 64;
/**
 * Bytes of one bbolt page with its overflow pages (a value longer than a
 * page), at most, that the reader holds at once; a longer run is refused as
 * damaged. etcd's values are at most --max-request-bytes (1.5 MiB by default).
 */
export const BBOLT_MAX_PAGE_RUN_BYTES = 64 * 1024 * 1024;
/** Bytes read at a time while an etcd snapshot's SHA-256 is checked. */
export const SNAPSHOT_HASH_CHUNK_BYTES = 1024 * 1024;
/** Revisions (records of etcd's `key` bucket) an etcd import writes per write transaction, at most. */
export const ETCD_IMPORT_BATCH_RECORDS = 10_000;
/**
 * Bytes of keys and values an etcd import writes per write transaction, at
 * most (a transaction ends at the first record that reaches it).
 */
export const ETCD_IMPORT_BATCH_BYTES = 16 * 1024 * 1024;
/**
 * How long a metrics scrape waits for each HTTP worker's values, in ms; a
 * worker that does not answer in time is left out of that scrape.
 */
export const METRICS_SCRAPE_TIMEOUT_MS = 2_000;

/** Questions for workers' metric values waiting at once, at most (a scrape asks each worker once). */
export const MAX_PENDING_SCRAPES = 256;

/**
 * Milliseconds between round-trip probes to each peer
 * (etcd_network_peer_round_trip_time_seconds; etcd observes one every 5 s
 * while a peer is unhealthy, 30 s otherwise).
 */
export const PEER_PROBE_INTERVAL_MS = 5_000;

/** A round-trip probe to a peer that takes longer than this many ms is given up (etcd: 5 s). */
export const PEER_PROBE_TIMEOUT_MS = 5_000;

/** bcrypt cost of password hashes by default (etcd's --bcrypt-cost; Go's bcrypt.DefaultCost). */
export const DEFAULT_BCRYPT_COST = 10;

/** Lowest bcrypt cost accepted (Go's bcrypt.MinCost); outside the range etcd uses the default. */
export const MIN_BCRYPT_COST = 4;

/** Highest bcrypt cost accepted (Go's bcrypt.MaxCost). */
export const MAX_BCRYPT_COST = 31;

/** Seconds a `simple` token stays valid after its last use (etcd's --auth-token-ttl default). */
export const DEFAULT_AUTH_TOKEN_TTL_S = 300;

/** Letters of a `simple` token's random part (etcd's defaultSimpleTokenLength). */
export const SIMPLE_TOKEN_LENGTH = 16;

/**
 * `simple` tokens a member holds at once; past it, the token nearest its
 * expiry is dropped to make room (etcd keeps every live token; cairn bounds
 * them).
 */
export const MAX_SIMPLE_TOKENS = 100_000;

/**
 * ms a thread trusts what it learned of a token from the member's token
 * table before asking again (the ask also extends a `simple` token's life,
 * so a token in use lives on within this much of etcd's rule). A change of
 * the auth store (a deleted user, a changed password, auth disabled) makes
 * it ask at once.
 */
export const TOKEN_CACHE_MS = 1_000;

/** Tokens one thread remembers at most (least recently checked dropped first). */
export const MAX_CACHED_TOKENS = 10_000;

/**
 * Failed authentications of one user name a thread checks in a row before
 * it limits them to one per AUTH_FAILURE_INTERVAL_MS (beyond etcd).
 */
export const AUTH_FAILURE_BURST = 5;

/** ms that give a user name back one checked authentication attempt after failures. */
export const AUTH_FAILURE_INTERVAL_MS = 1_000;

/** User names whose failed authentications a thread tracks at most. */
export const MAX_TRACKED_AUTH_FAILURES = 10_000;

/**
 * Bytes of one password ctl reads from stdin or a terminal (`--user name`,
 * `user add`, `user passwd`), at most; a longer line is refused. etcd
 * hashes passwords with bcrypt, which uses the first 72 bytes.
 */
export const CTL_PASSWORD_MAX_BYTES = 64 * 1024;

/** Milliseconds a `jwt` token is valid without a `ttl` option (etcd's jwt DefaultTTL, 5m). */
export const DEFAULT_JWT_TTL_MS = 5 * 60 * 1000;

/**
 * Bits of an RSA key's modulus a `jwt` member signs or verifies with, at
 * least: the `jose` library refuses shorter keys for the RS and PS methods
 * (etcd takes any length), so such a key is refused when the member starts.
 */
export const JWT_MIN_RSA_MODULUS_BITS = 2048;

/**
 * Distinct client certificate names (CNs) a client listener keeps a gRPC
 * relay socket for (--client-cert-auth): connections of further names are
 * served without a user.
 */
export const MAX_CERTIFICATE_USERS = 1_024;
