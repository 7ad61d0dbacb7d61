import type { BackoffPolicy, RotationPolicy } from './renewal-policy.js';

/**
 * meshd's defaults, in one place: the CLI shows them in its flags and --help, the mesh config
 * falls back to them, the CA, the server and the agent use them. (The discovery protocol's
 * own bounds are not settings and stay with the code they bound: src/xds/core/limits.ts.)
 */
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

// ── Identity ────────────────────────────────────────────────────────────────────────────────

/** Istio's default trust domain (meshConfig.trustDomain). */
export const TRUST_DOMAIN = 'cluster.local';
/** Where `meshd serve` keeps its CA material and token key (MESHD_DATA_DIR). */
export const DATA_DIR = './.meshd';

// ── Certificates ────────────────────────────────────────────────────────────────────────────

/** Workload SVID lifetime: Istio's DEFAULT_WORKLOAD_CERT_TTL (istiod) and SECRET_TTL (istio-agent), 24h. */
export const WORKLOAD_CERT_TTL_MS = DAY;
/** The longest workload SVID a caller may ask for: Istio's MAX_WORKLOAD_CERT_TTL, 90 days. */
export const MAX_WORKLOAD_CERT_TTL_MS = 90 * DAY;
/** A built-in root's lifetime: Istio's CITADEL_SELF_SIGNED_CA_CERT_TTL, 10 years. */
export const ROOT_CERT_TTL_MS = 3650 * DAY;
/** How long a prepared root is in the trust bundle before it signs. */
export const ROOT_ROTATION_OVERLAP_MS = DAY;
/**
 * The built-in root is rotated automatically in this last fraction of its life: Istio's
 * CITADEL_SELF_SIGNED_ROOT_CERT_GRACE_PERIOD_PERCENTILE, 20.
 */
export const ROOT_ROTATION_THRESHOLD = 0.2;
/** How often a running CA re-reads its journal or cacerts files and checks root rotation (SPIRE's CA rotator: every 10 s). */
export const CA_REFRESH_INTERVAL_MS = 10 * SECOND;

// ── Renewal ─────────────────────────────────────────────────────────────────────────────────

/**
 * meshd re-issues a workload SVID at 80 % ± 2 % of its lifetime (a 24h SVID after ~19h12m): the
 * grace ratio 0.2 in Istio's terms. The mesh config's SECRET_GRACE_PERIOD_RATIO (or
 * --rotation-fraction) moves the fraction; the jitter stays.
 */
export const SVID_ROTATION: RotationPolicy = { fraction: 0.8, jitter: 0.02 };
/** How often meshd's SVID cache looks for SVIDs that are due. */
export const SVID_SWEEP_MS = SECOND;
/** meshd's own serving certificate: a failed renewal is tried again after this long. */
export const SERVING_RENEWAL_RETRY_MS = 30 * SECOND;
/** `meshd agent` renews as istio-agent does: at half the lifetime ± 1 % (SECRET_GRACE_PERIOD_RATIO, SECRET_GRACE_PERIOD_RATIO_JITTER). */
export const AGENT_ROTATION: RotationPolicy = { fraction: 0.5, jitter: 0.01 };
/**
 * `meshd agent` retries a failed renewal or a lost xDS stream from 250 ms, doubling, waiting at
 * most 4 s (the jitter only shortens a wait): an agent is back within 4 s of meshd, and one
 * attempt against a listening meshd takes well under the remaining second.
 */
export const AGENT_BACKOFF: BackoffPolicy = { initialMs: 250, maxMs: 4 * SECOND };

// ── Tokens ──────────────────────────────────────────────────────────────────────────────────

/**
 * `meshd token issue --ttl`: one hour. A join token is for first contact; a workload then renews
 * with the SVID it holds (SPIRE's join tokens are used once the same way).
 */
export const TOKEN_TTL_MS = HOUR;
/** `meshd token issue` warns about tokens living longer than this. */
export const TOKEN_LONG_LIVED_MS = DAY;

// ── Config ──────────────────────────────────────────────────────────────────────────────────

/** Quiet time before a config reload: Istio's PILOT_DEBOUNCE_AFTER, 100 ms. */
export const CONFIG_DEBOUNCE_MS = 100;
/** The longest a reload waits under a steady stream of changes. */
export const CONFIG_DEBOUNCE_MAX_MS = SECOND;
/** How often the config dir's path is checked for a replaced or re-created dir. */
export const CONFIG_PATH_CHECK_MS = 2 * SECOND;

// ── Server ──────────────────────────────────────────────────────────────────────────────────

/** gRPC over TLS (istiod's 15012). */
export const SECURE_GRPC_ADDR = '0.0.0.0:15012';
/** The same gRPC services in plaintext, loopback only (istiod's 15010). */
export const GRPC_ADDR = '127.0.0.1:15010';
/** HTTP monitoring (istiod's 15014). */
export const MONITORING_ADDR = '127.0.0.1:15014';
/** Where workloads reach meshd's TLS gRPC port when nothing else is said. */
export const MESHD_XDS_ADDRESS = '127.0.0.1:15012';
/** On SIGTERM, how long open streams get to close. */
export const SHUTDOWN_GRACE_MS = 10 * SECOND;
/** When the agent stops, how long the workload's streams on its local sockets get to close. */
export const AGENT_SHUTDOWN_GRACE_MS = 2 * SECOND;
/**
 * An istio_* series not updated for 10 minutes is dropped. Ten times Prometheus' default
 * scrape interval (1m) and twice the usual rate() window ([5m]): a series still moving in the
 * window a dashboard looks at is never dropped, and one that comes back starts again from
 * 0, which rate() and increase() read as a counter reset.
 */
export const TELEMETRY_SERIES_IDLE_MS = 10 * MINUTE;
