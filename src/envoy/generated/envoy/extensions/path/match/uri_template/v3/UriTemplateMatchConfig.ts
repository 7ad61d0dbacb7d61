// Original file: node_modules/@grpc/grpc-js-xds/deps/envoy-api/envoy/extensions/path/match/uri_template/v3/uri_template_match.proto


export interface UriTemplateMatchConfig {
  'path_template'?: (string);
}

export interface UriTemplateMatchConfig__Output {
  'path_template'?: (string);
}
