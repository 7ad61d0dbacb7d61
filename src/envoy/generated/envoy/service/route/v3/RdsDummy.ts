// Original file: node_modules/@grpc/grpc-js-xds/deps/envoy-api/envoy/service/route/v3/rds.proto


export interface RdsDummy {
}

export interface RdsDummy__Output {
}
