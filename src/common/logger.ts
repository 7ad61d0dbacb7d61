import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/**
 * Paths that must never reach a log line: private keys and bearer tokens.
 * pino's redaction works on paths, so every object we log that could hold one of
 * these uses one of these key names (see the tests in test/common/logger.test.ts).
 */
export const REDACTED_PATHS = [
  'key', 'keyPem', 'privateKey', 'private_key', 'token', 'authorization', 'password',
  '*.key', '*.keyPem', '*.privateKey', '*.private_key', '*.token', '*.authorization', '*.password',
  'metadata.authorization', 'headers.authorization',
];

export interface LoggerConfig {
  level?: string;
  /** A destination stream; tests pass one to read what was logged. */
  destination?: NodeJS.WritableStream;
}

export function createLogger(config: LoggerConfig = {}): Logger {
  const options: LoggerOptions = {
    name: 'meshd',
    level: config.level ?? process.env.MESHD_LOG_LEVEL ?? 'info',
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return config.destination ? pino(options, config.destination) : pino(options);
}

/** A logger that drops everything: for library code used from tests and benchmarks. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/**
 * A child logger made on first use. Per-stream children (proxy, peer, connection) are needed
 * only when something is logged about that stream, yet pino serialises the bindings when a
 * child is made: 10,000 streams paid for 20,000 children that never wrote a line.
 */
export function lazyChild(parent: Logger, bindings: () => Record<string, unknown>): () => Logger {
  let child: Logger | undefined;
  return () => (child ??= parent.child(bindings()));
}
