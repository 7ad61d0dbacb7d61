/**
 * DestinationRule ClientTLSSettings (istio/api networking/v1alpha3/destination_rule.proto) with
 * Istio's ValidateTLS (pkg/config/validation/agent/validation.go), messages verbatim, plus what
 * meshd can and cannot do with them, as warnings: certificates come from files on the sidecar's
 * host; a credentialName names a Kubernetes Secret, which meshd cannot read.
 */
import type { ClientTlsMode, ClientTlsSettings } from './model.js';
import { Reader } from './fields.js';

type Path = (string | number)[];

const MODES: readonly ClientTlsMode[] = ['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL'];
const FIELDS = ['mode', 'clientCertificate', 'privateKey', 'caCertificates', 'credentialName', 'subjectAltNames', 'sni', 'insecureSkipVerify', 'caCrl'];
const FILE_FIELDS = ['clientCertificate', 'privateKey', 'caCertificates', 'caCrl'] as const;

/** insecureSkipVerify is a google.protobuf.BoolValue: YAML gives `true` or `{value: true}`. */
function readBoolValue(r: Reader, v: unknown, path: Path): boolean | undefined {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    const m = v as Record<string, unknown>;
    r.fields(m, path, ['value']);
    return r.bool(m.value, [...path, 'value']) ?? false;
  }
  return r.bool(v, path);
}

export function parseClientTls(r: Reader, v: unknown, path: Path): ClientTlsSettings | undefined {
  const m = r.map(v, path);
  if (m === undefined) return undefined;
  r.fields(m, path, FIELDS);
  const tls: ClientTlsSettings = {
    mode: r.enumValue(m.mode, [...path, 'mode'], MODES) ?? 'DISABLE',
    subjectAltNames: r.stringList(m.subjectAltNames, [...path, 'subjectAltNames']),
  };
  for (const f of [...FILE_FIELDS, 'credentialName', 'sni'] as const) {
    const s = r.string(m[f], [...path, f]);
    if (s !== undefined && s !== '') tls[f] = s;
  }
  const skip = readBoolValue(r, m.insecureSkipVerify, [...path, 'insecureSkipVerify']);
  if (skip !== undefined) tls.insecureSkipVerify = skip;
  // SubjectAltNames != nil in Go: set in the YAML, even as an empty list.
  const sansSet = m.subjectAltNames !== undefined && m.subjectAltNames !== null;

  if (tls.insecureSkipVerify === true) {
    if (tls.mode === 'SIMPLE' && (tls.caCertificates !== undefined || tls.credentialName !== undefined || sansSet)) {
      r.issues.error(path, 'cannot specify CaCertificates or CredentialName or SubjectAltNames when InsecureSkipVerify is set true');
    }
    if (tls.mode === 'MUTUAL' && (tls.caCertificates !== undefined || sansSet)) {
      r.issues.error(path, 'cannot specify CaCertificates or SubjectAltNames when InsecureSkipVerify is set true');
    }
  }
  const fromSecret = (tls.mode === 'SIMPLE' || tls.mode === 'MUTUAL') && tls.credentialName !== undefined;
  if (fromSecret && FILE_FIELDS.some((f) => tls[f] !== undefined)) {
    r.issues.error(path, 'cannot specify client certificates or CA certificate or CA CRL If credentialName is set');
  }
  if (tls.mode === 'MUTUAL' && !fromSecret) {
    if (tls.clientCertificate === undefined) r.issues.error(path, 'client certificate required for mutual tls');
    if (tls.privateKey === undefined) r.issues.error(path, 'private key required for mutual tls');
  }

  if (tls.credentialName !== undefined) {
    r.issues.warn([...path, 'credentialName'],
      'credentialName names a Kubernetes Secret, which meshd cannot read; give clientCertificate, privateKey and caCertificates as files on the sidecar\'s host');
  }
  if (tls.mode === 'ISTIO_MUTUAL' || tls.mode === 'DISABLE') {
    const ignored = [...FILE_FIELDS, 'credentialName', 'insecureSkipVerify'].filter((f) => m[f] !== undefined && m[f] !== null);
    if (ignored.length > 0) {
      const why = tls.mode === 'DISABLE' ? 'no TLS is originated' : 'the workload\'s own certificate and the mesh roots are used';
      r.issues.warn(path, `${ignored.join(', ')} ${ignored.length === 1 ? 'has' : 'have'} no effect with mode ${tls.mode}: ${why}`);
    }
  }
  return tls;
}
