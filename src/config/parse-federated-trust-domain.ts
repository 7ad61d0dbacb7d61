/**
 * ClusterFederatedTrustDomain (spire.spiffe.io/v1alpha1), the resource SPIRE users already
 * write to federate with another trust domain (spiffe/spire-controller-manager
 * api/v1alpha1/clusterfederatedtrustdomain_types.go), read with the same rules as its
 * webhook (ParseClusterFederatedTrustDomainSpec) plus meshd's:
 * - spec.trustDomain: a SPIFFE trust domain name (SPIFFE-ID §2.1);
 * - spec.bundleEndpointURL: https, no userinfo (spireapi.ValidateBundleEndpointURL);
 * - spec.bundleEndpointProfile.type https_web | https_spiffe; endpointSPIFFEID only for
 *   https_spiffe, where meshd also requires it to be an ID with a path in spec.trustDomain
 *   (meshd authenticates the endpoint with the bundle it holds for that trust domain);
 * - spec.trustDomainBundle: a SPIFFE bundle document, read as strictly as a fetched one;
 *   required for https_spiffe (the endpoint cannot be authenticated without it);
 * - without bundleEndpointURL the bundle is static (air-gapped federation): spec.trustDomainBundle
 *   or the annotation meshd.io/trust-domain-bundle-file (a path relative to the config dir),
 *   an extension that keeps the object valid for SPIRE's CRD.
 * Whether the trust domain clashes with meshd's own or another object's is checked across
 * documents in build-snapshot.ts.
 */
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseBundleDocument } from '../federation/bundle-document.js';
import type { ConfiguredBundle, EndpointProfile } from '../federation/relationship.js';
import { checkTrustDomain, SpiffeIdError, tryParseSpiffeId } from '../ca/spiffe-id.js';
import type { FederatedTrustDomain, ObjectMeta } from './model.js';
import { Reader } from './fields.js';

const BUNDLE_FILE_ANNOTATION = 'meshd.io/trust-domain-bundle-file';

const SPEC_FIELDS = ['trustDomain', 'bundleEndpointURL', 'bundleEndpointProfile', 'trustDomainBundle', 'className'];
const PROFILE_FIELDS = ['type', 'endpointSPIFFEID'];

function endpointUrlError(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'not a valid URL';
  }
  if (url.protocol !== 'https:') return `scheme must be "https", got ${JSON.stringify(url.protocol.replace(/:$/, ''))}`;
  if (url.username !== '' || url.password !== '') return 'cannot contain userinfo';
  if (url.hostname === '') return 'has no host';
  if (url.hash !== '') return 'cannot contain a fragment';
  return undefined;
}

export function parseFederatedTrustDomain(spec: unknown, r: Reader, meta: ObjectMeta): FederatedTrustDomain {
  const s = r.map(spec, ['spec']) ?? {};
  if (spec === undefined || spec === null) r.issues.error(['spec'], 'spec is required');
  r.fields(s, ['spec'], SPEC_FIELDS);
  const out: { kind: 'ClusterFederatedTrustDomain'; meta: ObjectMeta; trustDomain: string; endpoint?: FederatedTrustDomain['endpoint']; bundle?: ConfiguredBundle } = {
    kind: 'ClusterFederatedTrustDomain', meta, trustDomain: '',
  };

  const td = r.string(s.trustDomain, ['spec', 'trustDomain']);
  if (td === undefined || td === '') {
    if (spec !== undefined && spec !== null) r.issues.error(['spec', 'trustDomain'], 'spec.trustDomain is required');
  } else {
    try {
      checkTrustDomain(td, td);
      out.trustDomain = td;
    } catch (err) {
      if (!(err instanceof SpiffeIdError)) throw err;
      r.issues.error(['spec', 'trustDomain'], `invalid trustDomain value: ${err.message.replace(/^invalid SPIFFE ID "[^"]*": /, '')}`);
    }
  }

  const url = r.string(s.bundleEndpointURL, ['spec', 'bundleEndpointURL']);
  const profileMap = r.map(s.bundleEndpointProfile, ['spec', 'bundleEndpointProfile']);
  let profile: EndpointProfile | undefined;
  if (profileMap) {
    r.fields(profileMap, ['spec', 'bundleEndpointProfile'], PROFILE_FIELDS);
    const at = ['spec', 'bundleEndpointProfile'];
    const type = r.string(profileMap.type, [...at, 'type']);
    const id = r.string(profileMap.endpointSPIFFEID, [...at, 'endpointSPIFFEID']);
    if (type === 'https_web') {
      if (id) r.issues.error([...at, 'endpointSPIFFEID'], 'invalid bundle endpoint profile endpointSPIFFEID value: not applicable to the "https_web" profile');
      else profile = { type: 'https_web' };
    } else if (type === 'https_spiffe') {
      if (!id) {
        r.issues.error([...at, 'endpointSPIFFEID'], 'endpointSPIFFEID is required for the "https_spiffe" profile (the SPIFFE ID the bundle endpoint serves with)');
      } else {
        const parsed = tryParseSpiffeId(id);
        if (!parsed.ok) r.issues.error([...at, 'endpointSPIFFEID'], `invalid bundle endpoint profile endpointSPIFFEID value: ${parsed.error.message}`);
        else if (out.trustDomain !== '' && parsed.value.trustDomain !== out.trustDomain) {
          r.issues.error([...at, 'endpointSPIFFEID'], `endpointSPIFFEID ${id} is not in trust domain ${out.trustDomain}; meshd authenticates the endpoint with that trust domain's bundle, so it must serve with one of its IDs`);
        } else if (parsed.value.path === '') {
          r.issues.error([...at, 'endpointSPIFFEID'], `endpointSPIFFEID ${id} has no path; a server's X509-SVID carries a workload ID such as spiffe://${parsed.value.trustDomain}/ns/istio-system/sa/meshd`);
        } else profile = { type: 'https_spiffe', endpointSpiffeId: id };
      }
    } else if (type === undefined || type === '') {
      r.issues.error([...at, 'type'], 'bundleEndpointProfile.type is required: https_web or https_spiffe');
    } else {
      r.issues.error([...at, 'type'], `invalid bundle endpoint profile type value ${JSON.stringify(type)}: expected https_web or https_spiffe`);
    }
  }
  if (url !== undefined && url !== '') {
    const err = endpointUrlError(url);
    if (err) r.issues.error(['spec', 'bundleEndpointURL'], `invalid bundleEndpointURL value: ${err}`);
    else if (!profileMap) r.issues.error(['spec', 'bundleEndpointProfile'], 'spec.bundleEndpointProfile is required with a bundleEndpointURL');
    else if (profile) out.endpoint = { url, profile };
  } else if (profileMap) {
    r.issues.error(['spec', 'bundleEndpointProfile'], 'spec.bundleEndpointProfile needs spec.bundleEndpointURL');
  }

  const inline = r.string(s.trustDomainBundle, ['spec', 'trustDomainBundle']);
  if (inline !== undefined && inline !== '' && out.trustDomain !== '') {
    const parsed = parseBundleDocument(inline, out.trustDomain);
    if (!parsed.ok) r.issues.error(['spec', 'trustDomainBundle'], `invalid trustDomainBundle value: ${parsed.message}`);
    else out.bundle = { kind: 'inline', document: inline };
  }
  const file = meta.annotations[BUNDLE_FILE_ANNOTATION];
  if (file !== undefined) {
    const at = ['metadata', 'annotations', BUNDLE_FILE_ANNOTATION];
    if (inline !== undefined && inline !== '') r.issues.error(at, `set spec.trustDomainBundle or the ${BUNDLE_FILE_ANNOTATION} annotation, not both`);
    else if (file.trim() === '') r.issues.error(at, `${BUNDLE_FILE_ANNOTATION} is empty`);
    else out.bundle = { kind: 'file', path: isAbsolute(file) ? file : resolve(dirname(meta.source.file), file) };
  }

  const hasBundle = (inline !== undefined && inline !== '') || file !== undefined;
  if (profile?.type === 'https_spiffe' && !hasBundle) {
    r.issues.error(['spec', 'trustDomainBundle'], `the https_spiffe profile needs spec.trustDomainBundle (or the ${BUNDLE_FILE_ANNOTATION} annotation): the foreign bundle that authenticates the endpoint the first time`);
  }
  if ((url === undefined || url === '') && !profileMap && !hasBundle && out.trustDomain !== '') {
    r.issues.error(['spec'], `spec needs a bundleEndpointURL and bundleEndpointProfile to fetch ${out.trustDomain}'s bundle, or a static one in spec.trustDomainBundle or the ${BUNDLE_FILE_ANNOTATION} annotation`);
  }
  if (s.className !== undefined) {
    r.string(s.className, ['spec', 'className']);
    r.issues.warn(['spec', 'className'], 'spec.className selects a spire-controller-manager instance; meshd reads every ClusterFederatedTrustDomain and ignores it');
  }
  return out;
}
