// Written by scripts/gen-envoy-types.ts in place of proto-loader's Any: an Any is typed by the
// message its type URL names (src/envoy/any.ts).

export type { PackedAny as Any } from '../../../any.js';

export interface Any__Output {
  'type_url': (string);
  'value': (Buffer);
}
