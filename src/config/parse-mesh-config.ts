/**
 * Mesh settings, read from Istio's own MeshConfig YAML: the content of the `mesh` key of the
 * `istio` ConfigMap, i.e. the file pilot-discovery reads with `--meshConfig`. Users paste
 * what they have; keys meshd uses are applied, other MeshConfig keys are accepted with one
 * warning naming them, anything else is an `unknown field` error.
 *
 * Certificate lifetime and rotation use the names Istio users already set mesh-wide for
 * istio-agent, `defaultConfig.proxyMetadata.SECRET_TTL` and `SECRET_GRACE_PERIOD_RATIO`
 * (Istio pkg/istio-agent options); meshd's CA and agent apply them to every workload.
 */
import { DurationError, parseDuration } from '../common/duration.js';
import { DEFAULT_MESH_SETTINGS, type MeshSettings } from './model.js';
import { Reader, type YamlMap } from './fields.js';
import { dns1123LabelError, trustDomainError } from './rules.js';
import type { FieldPath } from './yaml-source.js';

/** MeshConfig fields meshd reads. */
const USED = ['trustDomain', 'trustDomainAliases', 'rootNamespace', 'enableAutoMtls', 'meshMTLS', 'defaultConfig', 'enableEnvoyAccessLogService'];

/** Other MeshConfig fields (istio/api mesh/v1alpha1/config.proto): valid Istio, no effect in meshd. */
const ISTIO_ONLY = [
  'accessLogFile', 'accessLogFormat', 'accessLogEncoding', 'connectTimeout', 'protocolDetectionTimeout', 'tcpKeepalive',
  'ingressClass', 'ingressService', 'ingressControllerMode', 'ingressSelector', 'enableTracing', 'enablePrometheusMerge',
  'outboundTrafficPolicy', 'inboundTrafficPolicy', 'defaultServiceExportTo', 'defaultVirtualServiceExportTo',
  'defaultDestinationRuleExportTo', 'localityLbSetting', 'dnsRefreshRate', 'h2UpgradePolicy', 'inboundClusterStatName',
  'outboundClusterStatName', 'certificates', 'serviceSettings', 'extensionProviders', 'defaultProviders',
  'discoverySelectors', 'pathNormalization', 'defaultHttpRetryPolicy', 'caCertificates', 'proxyHttpPort',
  'proxyListenPort', 'proxyInboundListenPort', 'verifyCertificateAtClient', 'tlsDefaults', 'ca', 'configSources',
  'thriftConfig', 'serviceScopeConfigs', 'meshNetworks', 'trustDomainAliasesRef', 'enableSdsTokenMount', 'sdsUdsPath',
  'mixerCheckServer', 'mixerReportServer', 'disablePolicyChecks', 'policyCheckFailOpen', 'rdsRefreshDelay',
  'defaultTrafficPolicy', 'defaultInboundHttpRetryPolicy', 'zoneAwareLbSetting', 'accessLogFile',
];

const PROXY_CONFIG_USED = ['proxyMetadata', 'envoyAccessLogService'];
const PROXY_METADATA_USED = ['SECRET_TTL', 'SECRET_GRACE_PERIOD_RATIO'];

export function parseMeshConfig(value: unknown, r: Reader, base: FieldPath = []): MeshSettings {
  const at = (...p: (string | number)[]): FieldPath => [...base, ...p];
  const mesh: MeshSettings = { ...DEFAULT_MESH_SETTINGS };
  const m: YamlMap = r.map(value, base) ?? {};
  const ignored: string[] = [];

  for (const key of Object.keys(m)) {
    if (USED.includes(key)) continue;
    if (ISTIO_ONLY.includes(key)) ignored.push(key);
    else r.issues.error(at(key), `unknown field ${JSON.stringify(key)} in MeshConfig`);
  }

  const td = r.string(m.trustDomain, at('trustDomain'));
  if (td !== undefined && td !== '') {
    const err = trustDomainError(td);
    if (err) r.issues.error(at('trustDomain'), `trustDomain: ${err}`);
    mesh.trustDomain = td;
  }
  const aliases = r.stringList(m.trustDomainAliases, at('trustDomainAliases'));
  aliases.forEach((a, i) => {
    const err = trustDomainError(a);
    if (err) r.issues.error(at('trustDomainAliases', i), `trustDomainAliases[${i}], domain \`${a}\` : ${err}`);
  });
  mesh.trustDomainAliases = aliases;

  const root = r.string(m.rootNamespace, at('rootNamespace'));
  if (root !== undefined && root !== '') {
    const err = dns1123LabelError(root);
    if (err) r.issues.error(at('rootNamespace'), `rootNamespace: Invalid value: ${JSON.stringify(root)}: ${err}`);
    mesh.rootNamespace = root;
  }

  const auto = r.bool(m.enableAutoMtls, at('enableAutoMtls'));
  if (auto !== undefined) mesh.enableAutoMtls = auto;

  const mtls = r.map(m.meshMTLS, at('meshMTLS'));
  if (mtls) {
    for (const key of Object.keys(mtls)) {
      if (key === 'minProtocolVersion') continue;
      if (key === 'ecdhCurves' || key === 'cipherSuites') ignored.push(`meshMTLS.${key}`);
      else r.issues.error(at('meshMTLS', key), `unknown field ${JSON.stringify(key)} in MeshConfig.meshMTLS`);
    }
    // Istio's TLSProtocol enum; TLS_AUTO means the default, TLS 1.2 at least.
    const v = r.enumValue(mtls.minProtocolVersion, at('meshMTLS', 'minProtocolVersion'), ['TLS_AUTO', 'TLSV1_2', 'TLSV1_3'] as const);
    if (v === 'TLSV1_3') mesh.minTlsVersion = 'TLSV1_3';
    else if (v !== undefined) mesh.minTlsVersion = 'TLSV1_2';
  }

  const dc = r.map(m.defaultConfig, at('defaultConfig'));
  let alsAddress: string | undefined;
  if (dc) {
    for (const key of Object.keys(dc)) if (!PROXY_CONFIG_USED.includes(key)) ignored.push(`defaultConfig.${key}`);
    const md = r.map(dc.proxyMetadata, at('defaultConfig', 'proxyMetadata'));
    if (md) {
      for (const key of Object.keys(md)) if (!PROXY_METADATA_USED.includes(key)) ignored.push(`defaultConfig.proxyMetadata.${key}`);
      readSecretSettings(r, md, mesh, at('defaultConfig', 'proxyMetadata'));
    }
    const als = r.map(dc.envoyAccessLogService, at('defaultConfig', 'envoyAccessLogService'));
    if (als) {
      for (const key of Object.keys(als)) if (key !== 'address') ignored.push(`defaultConfig.envoyAccessLogService.${key}`);
      const addr = r.string(als.address, at('defaultConfig', 'envoyAccessLogService', 'address'));
      if (addr !== undefined) {
        if (!/^[^\s:]+:\d{1,5}$/.test(addr) && !/^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(addr)) {
          r.issues.error(at('defaultConfig', 'envoyAccessLogService', 'address'), `invalid address ${JSON.stringify(addr)}: expected host:port`);
        } else alsAddress = addr;
      }
    }
  }
  // Istio sends access logs over ALS only when enableEnvoyAccessLogService is true.
  const alsEnabled = r.bool(m.enableEnvoyAccessLogService, at('enableEnvoyAccessLogService'));
  if (alsEnabled === true && alsAddress !== undefined) mesh.accessLogService = { address: alsAddress };
  if (alsEnabled === true && alsAddress === undefined) {
    r.issues.warn(at('enableEnvoyAccessLogService'), 'enableEnvoyAccessLogService is true but defaultConfig.envoyAccessLogService.address is not set; meshd\'s own address is used');
  }

  if (ignored.length > 0) {
    const first = ignored[0]!.split('.');
    r.issues.warn(at(...first), `MeshConfig fields not used by meshd (ignored): ${[...new Set(ignored)].join(', ')}`);
  }
  return mesh;
}

function readSecretSettings(r: Reader, md: YamlMap, mesh: MeshSettings, base: FieldPath): void {
  const ttlRaw = md.SECRET_TTL;
  if (ttlRaw !== undefined && ttlRaw !== null) {
    const path = [...base, 'SECRET_TTL'];
    const text = typeof ttlRaw === 'string' ? ttlRaw : undefined;
    if (text === undefined) {
      r.issues.error(path, `SECRET_TTL must be a duration string such as "24h", got ${JSON.stringify(ttlRaw)}`);
    } else {
      try {
        const ms = parseDuration(text);
        if (ms < 60_000) r.issues.error(path, `SECRET_TTL ${text} is too short (at least 1m)`);
        else mesh.certificateTtlMs = ms;
      } catch (err) {
        r.issues.error(path, `SECRET_TTL: ${err instanceof DurationError ? err.message : String(err)}`);
      }
    }
  }
  const ratioRaw = md.SECRET_GRACE_PERIOD_RATIO;
  if (ratioRaw !== undefined && ratioRaw !== null) {
    const path = [...base, 'SECRET_GRACE_PERIOD_RATIO'];
    const ratio = typeof ratioRaw === 'number' ? ratioRaw : typeof ratioRaw === 'string' && ratioRaw.trim() !== '' ? Number(ratioRaw) : NaN;
    if (!(ratio > 0 && ratio < 1)) {
      r.issues.error(path, `SECRET_GRACE_PERIOD_RATIO must be a number between 0 and 1 (exclusive), got ${JSON.stringify(ratioRaw)}`);
    } else {
      // Istio renews `ratio` of the lifetime before expiry; the model stores when to renew.
      mesh.certificateRotationFraction = Math.round((1 - ratio) * 1e6) / 1e6;
    }
  }
}
