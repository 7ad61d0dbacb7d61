/**
 * The Envoy RBAC messages meshd emits and reads back, as the plain objects protobufjs's
 * `fromObject` takes (snake_case field names, UInt32Value as {value}, Any as {'@type', ...}):
 * envoy/config/rbac/v3/rbac.proto, envoy/extensions/filters/{http,network}/rbac/v3/rbac.proto
 * and the matchers they use (envoy/type/matcher/v3, envoy/config/route/v3 HeaderMatcher,
 * envoy/config/core/v3 CidrRange). A oneof is a union of single-key objects.
 *
 * These are narrower than the generated Envoy types (src/envoy/generated): a oneof is a
 * discriminated union here, which the evaluator in src/check relies on. Every value of these
 * types is also a value of the generated ones (the filters go into Listener messages typed by
 * them, so a drift is a compile error).
 *
 * Proto3 leaves defaults off the wire, so a config decoded from bytes may lack `action`
 * (ALLOW), `policies`, `invert_match` and the like; readers treat a missing field as its default.
 */

export const HTTP_RBAC_FILTER = 'envoy.filters.http.rbac';
export const NETWORK_RBAC_FILTER = 'envoy.filters.network.rbac';
export const HTTP_RBAC_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';
export const NETWORK_RBAC_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC';
export const URI_TEMPLATE_MATCH_TYPE = 'type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig';

export interface RegexMatcher { regex: string }

/** envoy.type.matcher.v3.StringMatcher (ignore_case is not allowed with safe_regex). */
export type StringMatcher = { ignore_case?: boolean } & (
  | { exact: string }
  | { prefix: string }
  | { suffix: string }
  | { contains: string }
  | { safe_regex: RegexMatcher }
);

/** envoy.config.route.v3.HeaderMatcher, the forms RBAC configs use. */
export type HeaderMatcher = { name: string; invert_match?: boolean; treat_missing_header_as_empty?: boolean } & (
  | { string_match: StringMatcher }
  | { present_match: boolean }
  | { exact_match: string }
  | { prefix_match: string }
  | { suffix_match: string }
  | { contains_match: string }
  | { safe_regex_match: RegexMatcher }
  | { range_match: { start: number | string; end: number | string } }
  | Record<never, never>
);

export interface UInt32Value { value: number }

/** envoy.config.core.v3.CidrRange. */
export interface CidrRange { address_prefix: string; prefix_len?: UInt32Value }

/** envoy.type.matcher.v3.PathMatcher: the :path without query and fragment. */
export interface PathMatcher { path: StringMatcher }

export interface DoubleMatcher { range?: { start: number; end: number }; exact?: number }

/** envoy.type.matcher.v3.ValueMatcher. */
export type ValueMatcher =
  | { null_match: Record<string, never> }
  | { double_match: DoubleMatcher }
  | { string_match: StringMatcher }
  | { bool_match: boolean }
  | { present_match: boolean }
  | { list_match: { one_of: ValueMatcher } }
  | { or_match: { value_matchers: ValueMatcher[] } };

/** envoy.type.matcher.v3.MetadataMatcher over the request's dynamic metadata. */
export interface MetadataMatcher {
  filter: string;
  path: { key: string }[];
  value: ValueMatcher;
  invert?: boolean;
}

/** envoy.type.matcher.v3.FilterStateMatcher. */
export interface FilterStateMatcher { key: string; string_match: StringMatcher }

/** envoy.config.core.v3.TypedExtensionConfig holding the one extension RBAC configs use here. */
export interface TypedExtensionConfig { name: string; typed_config: { '@type': typeof URI_TEMPLATE_MATCH_TYPE; path_template?: string } }

export interface PermissionSet { rules: Permission[] }
export interface PrincipalSet { ids: Principal[] }

/** envoy.config.rbac.v3.Permission: what is asked for. */
export type Permission =
  | { and_rules: PermissionSet }
  | { or_rules: PermissionSet }
  | { any: true }
  | { header: HeaderMatcher }
  | { url_path: PathMatcher }
  | { destination_ip: CidrRange }
  | { destination_port: number }
  | { destination_port_range: { start: number; end: number } }
  | { metadata: MetadataMatcher }
  | { not_rule: Permission }
  | { requested_server_name: StringMatcher }
  | { uri_template: TypedExtensionConfig };

/** envoy.config.rbac.v3.Principal: who asks. */
export type Principal =
  | { and_ids: PrincipalSet }
  | { or_ids: PrincipalSet }
  | { any: true }
  | { authenticated: { principal_name?: StringMatcher } }
  | { source_ip: CidrRange }
  | { direct_remote_ip: CidrRange }
  | { remote_ip: CidrRange }
  | { header: HeaderMatcher }
  | { url_path: PathMatcher }
  | { metadata: MetadataMatcher }
  | { filter_state: FilterStateMatcher }
  | { not_id: Principal };

/** A policy matches when some permission and some principal match. */
export interface Policy {
  permissions: Permission[];
  principals: Principal[];
}

export type RbacAction = 'ALLOW' | 'DENY' | 'LOG';

/** envoy.config.rbac.v3.RBAC: policies are evaluated in name order; the first match decides. */
export interface Rbac {
  action?: RbacAction;
  policies?: Record<string, Policy>;
}

/** envoy.extensions.filters.http.rbac.v3.RBAC. */
export interface HttpRbac {
  '@type': typeof HTTP_RBAC_TYPE;
  rules?: Rbac;
  shadow_rules?: Rbac;
  shadow_rules_stat_prefix?: string;
}

/** envoy.extensions.filters.network.rbac.v3.RBAC. */
export interface NetworkRbac {
  '@type': typeof NETWORK_RBAC_TYPE;
  stat_prefix: string;
  rules?: Rbac;
  shadow_rules?: Rbac;
  shadow_rules_stat_prefix?: string;
}

/** An HttpConnectionManager http_filters entry. */
export interface HttpRbacFilter { name: typeof HTTP_RBAC_FILTER; typed_config: HttpRbac }

/** A filter chain filters entry. */
export interface NetworkRbacFilter { name: typeof NETWORK_RBAC_FILTER; typed_config: NetworkRbac }
