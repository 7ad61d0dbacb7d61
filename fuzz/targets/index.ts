import type { FuzzTarget } from '../target.js';
import { alsWire } from './als-wire.js';
import { csr, der, x509 } from './ca.js';
import { nodeId } from './node-id.js';
import { pem } from './pem.js';
import { xdsRequest } from './xds-request.js';
import { yaml } from './yaml.js';

export const TARGETS: Record<string, FuzzTarget> = Object.fromEntries([xdsRequest, alsWire, csr, der, x509, pem, nodeId, yaml].map((t) => [t.name, t]));
