import * as fc from 'fast-check';
import { parseNodeId as parseProxyNodeId } from '../../src/xds/admission/admit-proxy.js';
import { parseNodeId as parseTelemetryNodeId } from '../../src/telemetry/node-identity.js';
import { parseSidecarNodeId } from '../../src/xds/bootstrap/node-identity.js';
import { ContractViolation, text, utf8, type FuzzTarget } from '../target.js';

/** The node-id parsers: ids come from any client's Node.id. They return a value or undefined, never throw. */
export const nodeId: FuzzTarget = {
  name: 'node-id',
  about: 'parseNodeId (xDS, telemetry) and parseSidecarNodeId: a value or undefined, never a throw; parse(format(x)) = x',
  seeds: () => ['sidecar~10.0.0.1~web-1.shop~shop.svc.cluster.local', 'router~10.0.0.2~gw.istio-system~istio-system.svc.cluster.local', '~~~', 'a~b', 'sidecar~~.~.svc.'].map(utf8),
  generators: [fc.tuple(fc.array(fc.constantFrom('~', '.', 'a', 'svc', '.svc.'), { maxLength: 8 }), fc.integer({ min: 1, max: 50_000 })).map(([p, n]) => utf8(p.join('').repeat(n)))],
  check(input) {
    const id = text(input);
    const results = [parseProxyNodeId(id), parseTelemetryNodeId(id), parseSidecarNodeId(id)];
    return results.map((r) => (r === undefined ? '-' : 'v')).join('');
  },
  property: {
    arbitrary: fc.record({
      ip: fc.oneof(fc.ipV4(), fc.ipV6()),
      name: fc.stringMatching(/^[a-z0-9]([a-z0-9.-]{0,30}[a-z0-9])?$/),
      ns: fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/),
      domain: fc.stringMatching(/^[a-z0-9]([a-z0-9.-]{0,20}[a-z0-9])?$/),
    }),
    check(value) {
      const v = value as { ip: string; name: string; ns: string; domain: string };
      const id = `sidecar~${v.ip}~${v.name}.${v.ns}~${v.ns}.svc.${v.domain}`;
      const proxy = parseProxyNodeId(id);
      const telemetry = parseTelemetryNodeId(id);
      const sidecar = parseSidecarNodeId(id);
      const bad = (what: string, got: unknown): never => { throw new ContractViolation(`${what} of ${id}: ${JSON.stringify(got)}`); };
      if (proxy?.name !== v.name || proxy.namespace !== v.ns) bad('parseNodeId (xds)', proxy);
      if (telemetry?.ip !== v.ip || telemetry.workload !== v.name || telemetry.namespace !== v.ns) bad('parseNodeId (telemetry)', telemetry);
      if (sidecar?.ip !== v.ip || sidecar.workload !== v.name || sidecar.namespace !== v.ns || sidecar.dnsDomain !== v.domain || sidecar.type !== 'sidecar') bad('parseSidecarNodeId', sidecar);
    },
  },
};
