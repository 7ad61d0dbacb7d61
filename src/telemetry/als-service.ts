import * as grpc from '@grpc/grpc-js';
import type { Registry } from 'prom-client';
import type { Logger } from '../common/logger.js';
import type { Authenticator, Identity } from '../auth/identity.js';
import { AuthenticationError } from '../auth/identity.js';
import { unverifiedClientCertificate } from '../auth/tls-peer.js';
import { countEntries, scanMessage, WireError, type ScannedMessage } from './als-wire.js';
import type { AccessLogIngester, AccessLogStream } from './ingester.js';
import { decodeIdentifier, IdentifierError } from './log-identifier.js';
import { counterOn, gaugeOn } from './registry-metrics.js';
import { clip } from '../xds/core/limits.js';
import { HandlerErrors } from '../common/handler-errors.js';
import { addGuardedService } from '../common/guarded-service.js';

/**
 * envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs, a thin adapter over
 * the ingester (envoy/service/accesslog/v3/als.proto):
 *
 * - client streaming and lossy by design: meshd never answers while the stream is open
 *   (Envoy does not wait for one); it ends a call only on shutdown, on a bad first
 *   message, or with an empty response when the client half-closes;
 * - authenticated like xDS when the stream opens (UNAUTHENTICATED otherwise); nothing is
 *   read until then, so an unauthenticated client gets HTTP/2 backpressure, not memory;
 * - the identifier (node, log_name) comes only in the first message and is cached for
 *   the stream; a first message without one ends the call with INVALID_ARGUMENT;
 * - messages are split into entry byte ranges here (cheap) and decoded by the ingester's
 *   worker in bounded slices, so a flood never stalls the event loop.
 *
 * Messages stay raw bytes through grpc-js (identity (de)serializers): decoding happens
 * once, in the fast reader, and only for the fields the metrics need.
 */

export const ACCESS_LOG_SERVICE_NAME = 'envoy.service.accesslog.v3.AccessLogService';
export const STREAM_ACCESS_LOGS_PATH = `/${ACCESS_LOG_SERVICE_NAME}/StreamAccessLogs`;

const EMPTY = Buffer.alloc(0);
const identity = (b: Buffer): Buffer => b;

/** The grpc-js ServiceDefinition, built by hand (no proto-loader); messages as raw bytes. */
export const accessLogServiceDefinition: grpc.ServiceDefinition = {
  StreamAccessLogs: {
    path: STREAM_ACCESS_LOGS_PATH,
    requestStream: true,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    // StreamAccessLogsResponse has no fields: its encoding is empty.
    responseSerialize: identity,
    responseDeserialize: identity,
    originalName: 'streamAccessLogs',
  },
};

export interface AccessLogServiceDeps {
  authenticator: Authenticator;
  ingest: AccessLogIngester;
  logger: Logger;
  registry: Registry;
  /** Counts and logs unexpected errors (meshd_handler_errors_total); one is made on `registry` when none is given. */
  errors?: HandlerErrors;
}

export interface AccessLogServiceHandle {
  /** Open, identified streams. */
  readonly openStreams: number;
  /** Ends every open call (UNAVAILABLE, "shutting down"); Envoy reconnects to whoever serves next. */
  close(): void;
}

type Finish = (status: grpc.status, details: string) => void;

export function addAccessLogService(server: grpc.Server, deps: AccessLogServiceDeps): AccessLogServiceHandle {
  const { authenticator, ingest, logger, registry } = deps;
  const log = logger.child({ component: 'als' });
  const streamsGauge = gaugeOn(registry, { name: 'meshd_accesslog_streams', help: 'Open, identified Envoy access-log streams.' });
  const rejected = counterOn(registry, {
    name: 'meshd_accesslog_streams_rejected_total',
    help: 'Access-log streams ended by meshd: unauthenticated, no_identifier (first message without identifier), invalid_identifier, permission_denied (node not of the authenticated identity).',
    labelNames: ['reason'],
  });
  const messagesDropped = counterOn(registry, {
    name: 'meshd_accesslog_messages_dropped_total',
    help: 'Access-log messages dropped whole because they do not decode (malformed).',
    labelNames: ['reason'],
  });
  for (const reason of ['unauthenticated', 'no_identifier', 'invalid_identifier', 'permission_denied']) rejected.inc({ reason }, 0);
  messagesDropped.inc({ reason: 'malformed' }, 0);

  const open = new Set<Finish>();
  let closing = false;
  let identified = 0;

  const handler = (call: grpc.ServerReadableStream<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>): void => {
    const peer = clip(call.getPeer());
    let done = false;
    let identityOf: Identity | undefined;
    let stream: AccessLogStream | undefined;

    const cleanup = (): void => {
      if (stream !== undefined && !stream.closed) {
        stream.closed = true;
        streamsGauge.dec();
        identified--;
      }
      open.delete(finish);
    };
    const finish: Finish = (code, details) => {
      if (done) return;
      done = true;
      cleanup();
      if (code === grpc.status.OK) callback(null, EMPTY);
      else callback({ code, details, name: 'AccessLogServiceError', message: details });
      // Stop reading: whatever the client still sends is discarded by grpc-js.
      call.removeAllListeners('data');
    };
    if (closing) {
      finish(grpc.status.UNAVAILABLE, 'meshd is shutting down');
      return;
    }
    open.add(finish);

    const onMessage = (bytes: Buffer): void => {
      if (done) return;
      let message: ScannedMessage;
      try {
        message = scanMessage(bytes);
      } catch (err) {
        if (!(err instanceof WireError)) throw err;
        messagesDropped.inc({ reason: 'malformed' });
        if (stream === undefined) {
          rejected.inc({ reason: 'invalid_identifier' });
          finish(grpc.status.INVALID_ARGUMENT, `first StreamAccessLogsMessage does not decode: ${err.message}`);
        }
        return;
      }
      if (stream === undefined) {
        stream = open1(message, bytes);
        if (stream === undefined) return;
      }
      ingest.enqueue(stream, message, bytes.length);
    };

    /** The first message: the identifier opens the stream's context. */
    const open1 = (message: ScannedMessage, bytes: Buffer): AccessLogStream | undefined => {
      if (message.identifier === undefined) {
        rejected.inc({ reason: 'no_identifier' });
        ingest.countDropped('no_identifier', countEntries(bytes));
        finish(grpc.status.INVALID_ARGUMENT, 'the first StreamAccessLogsMessage must carry identifier {node, log_name}');
        return undefined;
      }
      try {
        const identifier = decodeIdentifier(message.identifier);
        const s = ingest.openStream(identifier, identityOf!);
        streamsGauge.inc();
        identified++;
        log.debug({ node: clip(identifier.nodeId), logName: clip(identifier.logName), spiffeId: identityOf!.spiffeId, peer }, 'access-log stream opened');
        return s;
      } catch (err) {
        if (!(err instanceof IdentifierError)) throw err;
        const mismatch = err.message.includes('authenticated as');
        rejected.inc({ reason: mismatch ? 'permission_denied' : 'invalid_identifier' });
        ingest.countDropped('no_identifier', message.http.length + message.tcp.length);
        log.warn({ peer, spiffeId: identityOf!.spiffeId, err: err.message }, 'access-log stream refused');
        finish(mismatch ? grpc.status.PERMISSION_DENIED : grpc.status.INVALID_ARGUMENT, err.message);
        return undefined;
      }
    };

    // Nothing is read before the caller is authenticated.
    call.pause();
    call.on('data', onMessage);
    call.on('end', () => finish(grpc.status.OK, ''));
    call.on('error', () => { done = true; cleanup(); });
    call.on('cancelled', () => { done = true; cleanup(); });

    authenticator.authenticate({ metadata: call.metadata, authContext: call.getAuthContext(), peer, unverifiedCertificate: unverifiedClientCertificate(call) }).then(
      (who) => {
        if (done) return;
        identityOf = who;
        call.resume();
      },
      (err: unknown) => {
        rejected.inc({ reason: 'unauthenticated' });
        // The error text only: never the metadata, which carries the token.
        const reason = err instanceof AuthenticationError ? err.message : 'authentication failed';
        log.warn({ peer, reason }, 'access-log stream unauthenticated');
        finish(err instanceof AuthenticationError && err.permissionDenied ? grpc.status.PERMISSION_DENIED : grpc.status.UNAUTHENTICATED, reason);
      },
    );
  };

  const errors = deps.errors ?? new HandlerErrors({ logger, registry });
  addGuardedService(server, accessLogServiceDefinition, { StreamAccessLogs: handler as grpc.handleClientStreamingCall<Buffer, Buffer> }, errors);

  return {
    get openStreams() {
      return identified;
    },
    close() {
      closing = true;
      for (const finish of [...open]) finish(grpc.status.UNAVAILABLE, 'meshd is shutting down');
    },
  };
}
