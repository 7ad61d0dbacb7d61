import type { WorkloadEntry } from '../config/model.js';

/**
 * Label selection, one rule for every selector meshd reads (ServiceEntry workloadSelector,
 * PeerAuthentication, AuthorizationPolicy and DestinationRule selectors): Istio's
 * labels.Instance.SubsetOf (pkg/config/labels/instance.go) — every selector label is on the
 * workload with the same value; an empty selector matches everything. Only own properties count,
 * so a selector key such as `constructor` never matches through the prototype.
 */
export function labelsMatch(selector: Readonly<Record<string, string>>, labels: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of Object.entries(selector)) {
    if (!Object.prototype.hasOwnProperty.call(labels, k) || labels[k] !== v) return false;
  }
  return true;
}

/**
 * A WorkloadEntry's labels as selectors see them: spec.labels, the labels the registry matches
 * ServiceEntry workloadSelectors against, so one workload never looks different to two parts of
 * meshd.
 */
export function workloadLabels(workload: WorkloadEntry): Readonly<Record<string, string>> {
  return workload.spec.labels;
}
