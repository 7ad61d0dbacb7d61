import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import { lookupType } from '../envoy/protos.js';

/**
 * istio.v1.auth.IstioCertificateService, described by hand like the xDS services
 * (src/xds/services/definitions.ts): protobufjs codecs from protos/istio/v1/auth/ca.proto,
 * so meshd and the agent need no generated code and no @grpc/proto-loader.
 */
export const CSR_SERVICE = 'istio.v1.auth.IstioCertificateService';
export const CREATE_CERTIFICATE = 'CreateCertificate';
export const CREATE_CERTIFICATE_PATH = `/${CSR_SERVICE}/${CREATE_CERTIFICATE}`;

export interface CertificateRequest {
  csr: string;
  /** Requested lifetime in seconds; 0 = the CA's default. */
  validitySeconds: number;
  /** google.protobuf.Struct as plain JSON (string values only are read). */
  metadata: Record<string, string>;
  /**
   * Set (server side only) when the bytes were not an IstioCertificateRequest: grpc-js would
   * answer a throwing deserializer with INTERNAL, so the handler refuses it as INVALID_ARGUMENT.
   */
  undecodable?: string;
}

export interface CertificateResponse {
  /** Leaf first, then each intermediate, then the root bundle as one element. */
  certChain: string[];
}

const requestType = () => lookupType('istio.v1.auth.IstioCertificateRequest');
const responseType = () => lookupType('istio.v1.auth.IstioCertificateResponse');

interface StructValue { stringValue?: string; numberValue?: number; boolValue?: boolean }

export function encodeCertificateRequest(r: CertificateRequest): Buffer {
  const t = requestType();
  const fields: Record<string, StructValue> = {};
  for (const [k, v] of Object.entries(r.metadata)) fields[k] = { stringValue: v };
  const value: Record<string, unknown> = { csr: r.csr, validity_duration: r.validitySeconds };
  if (Object.keys(fields).length > 0) value.metadata = { fields };
  return Buffer.from(t.encode(t.fromObject(value)).finish());
}

/** Throws on bytes that are not an IstioCertificateRequest. */
export function decodeCertificateRequest(bytes: Buffer): CertificateRequest {
  const t = requestType();
  const o = t.toObject(t.decode(bytes), { longs: String, defaults: true }) as {
    csr: string; validity_duration: string; metadata?: { fields?: Record<string, StructValue> };
  };
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(o.metadata?.fields ?? {})) {
    if (typeof v.stringValue === 'string') metadata[k] = v.stringValue;
    else if (v.numberValue !== undefined) metadata[k] = String(v.numberValue);
    else if (v.boolValue !== undefined) metadata[k] = String(v.boolValue);
  }
  // int64 arrives as a decimal string so an absurd value is seen as such, not rounded.
  const validitySeconds = Number(o.validity_duration);
  return { csr: o.csr, validitySeconds, metadata };
}

export function encodeCertificateResponse(r: CertificateResponse): Buffer {
  const t = responseType();
  return Buffer.from(t.encode(t.fromObject({ cert_chain: r.certChain })).finish());
}

export function decodeCertificateResponse(bytes: Buffer): CertificateResponse {
  const t = responseType();
  const o = t.toObject(t.decode(bytes), { defaults: true }) as { cert_chain: string[] };
  return { certChain: o.cert_chain };
}

/** meshd's deserializer: never throws, marks undecodable bytes for the handler to refuse. */
function decodeCertificateRequestOnServer(bytes: Buffer): CertificateRequest {
  try {
    return decodeCertificateRequest(bytes);
  } catch (err) {
    return { csr: '', validitySeconds: 0, metadata: {}, undecodable: err instanceof Error ? err.message : String(err) };
  }
}

const createCertificate: MethodDefinition<CertificateRequest, CertificateResponse> = {
  path: CREATE_CERTIFICATE_PATH,
  originalName: CREATE_CERTIFICATE,
  requestStream: false,
  responseStream: false,
  requestSerialize: encodeCertificateRequest,
  requestDeserialize: decodeCertificateRequestOnServer,
  responseSerialize: encodeCertificateResponse,
  responseDeserialize: decodeCertificateResponse,
};

/** Both sides: meshd registers it, the agent builds its client from it. */
export const csrServiceDefinition: ServiceDefinition = { [CREATE_CERTIFICATE]: createCertificate } as unknown as ServiceDefinition;
