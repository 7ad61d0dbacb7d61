import type { WorkloadEntry } from '../config/model.js';

/**
 * A WorkloadEntry's labels as policy selectors and auto mTLS see them: spec.labels, the
 * same labels the registry matches ServiceEntry workloadSelectors against
 * (src/config/registry.ts), so one workload never looks different to two parts of meshd.
 */
export function workloadLabels(workload: WorkloadEntry): Readonly<Record<string, string>> {
  return workload.spec.labels;
}
