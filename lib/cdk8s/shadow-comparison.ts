/**
 * ModelMonitoring's `shadow` option: which service this one shadows, and the comparison's settings, checked and
 * resolved into the rule options of rules/shadow.ts.
 */
import type { DriftProfile } from '@modelship/contract';
import type { ModelService } from './model-service';
import {
  DEFAULT_SHADOW_ERROR_RATIO_THRESHOLD, DEFAULT_SHADOW_PSI_THRESHOLD, DEFAULT_SHADOW_WINDOW, type ShadowRuleOptions,
} from './rules/shadow';

export interface ShadowComparisonOptions {
  /**
   * The primary: the ModelService whose requests are copied to this one (a ModelRoute backend whose `mirror` is this
   * service). It must serve the same model name, since a mirrored request names the primary's model.
   */
  readonly of: ModelService;
  /**
   * The window both services are compared over; part of the recorded series' names
   * (`modelship:shadow_psi:<window>`, `modelship:shadow_error_ratio_delta:<window>`).
   * @default '1h'
   */
  readonly window?: string;
  /**
   * PSI between the two services' prediction distributions above which ModelServiceShadowDiverges fires
   * (< 0.1 alike, 0.1–0.25 a moderate difference, > 0.25 a significant one).
   * @default 0.25
   */
  readonly psiThreshold?: number;
  /**
   * How much higher (a share of requests: 0.01 is one percentage point) the shadow's server-error ratio may be than
   * the primary's before ModelServiceShadowDiverges fires.
   * @default 0.01
   */
  readonly errorRatioThreshold?: number;
}

/** The comparison's rule options; what cannot be compared is refused with the fix. */
export function shadowOptions(options: ShadowComparisonOptions, shadow: ModelService, labels: Readonly<Record<string, string>>): ShadowRuleOptions {
  const primary = options.of;
  if (primary === shadow) {
    throw new Error(`'shadow.of' is ModelService '${shadow.node.path}' itself; name the service whose requests are copied to it (the ModelRoute backend it mirrors)`);
  }
  if (primary.modelName !== shadow.modelName) {
    throw new Error(`'shadow.of' (ModelService '${primary.node.path}') serves model '${primary.modelName}' and this service '${shadow.modelName}': a mirrored request names the primary's model, which the shadow must serve too; give both the same 'modelName'`);
  }
  const window = options.window ?? DEFAULT_SHADOW_WINDOW;
  // No 'ms': the window names the recorded series, and a sub-second window counts no requests anyway.
  if (typeof window !== 'string' || !/^(\d+(s|m|h|d|w))+$/.test(window)) throw new Error(`'shadow.window' ('${window}') must be a Prometheus duration such as '1h' or '6h'`);
  const psiThreshold = options.psiThreshold ?? DEFAULT_SHADOW_PSI_THRESHOLD;
  if (!(Number.isFinite(psiThreshold) && psiThreshold > 0)) throw new Error(`'shadow.psiThreshold' (${psiThreshold}) must be a PSI above 0, e.g. 0.25 (significant) or 0.1 (moderate)`);
  const errorRatioThreshold = options.errorRatioThreshold ?? DEFAULT_SHADOW_ERROR_RATIO_THRESHOLD;
  if (!(errorRatioThreshold >= 0 && errorRatioThreshold < 1)) throw new Error(`'shadow.errorRatioThreshold' (${errorRatioThreshold}) must be a share from 0 to below 1, e.g. 0.01 for one percentage point more server errors than the primary`);
  const distributions = shadow.hasDriftProfile && primary.hasDriftProfile;
  if (distributions && shadow.driftProfile && primary.driftProfile) checkSameBins(shadow.driftProfile, primary.driftProfile, primary);
  const outputs = shadow.signature?.outputs.map((t) => t.name);
  return {
    shadow: shadow.seriesSelector, primary: primary.seriesSelector, window, psiThreshold, errorRatioThreshold, distributions,
    outputs: outputs && outputs.length > 0 ? outputs : undefined, labels,
  };
}

/**
 * The runtime exports bin numbers, not their edges: the shares of two services are comparable only when bin k is
 * the same range on both, i.e. their profiles have the same edges for every output feature. Checked where both
 * profiles are read at synth (ModelSource.fromFile); elsewhere the docs ask for the same profile on both.
 */
function checkSameBins(shadow: DriftProfile, primary: DriftProfile, primaryService: ModelService): void {
  for (const tensor of shadow.tensors.filter((t) => t.kind === 'output')) {
    const other = primary.tensors.find((t) => t.kind === 'output' && t.name === tensor.name);
    for (const feature of tensor.features) {
      const edges = other?.features.find((f) => f.index === feature.index)?.edges;
      if (!edges || edges.length !== feature.edges.length || edges.some((edge, i) => edge !== feature.edges[i])) {
        throw new Error(`'shadow.of' (ModelService '${primaryService.node.path}'): its drift profile bins feature ${feature.index} of output '${tensor.name}' ${edges ? `at [${edges.join(', ')}]` : 'not at all'}, this service's at [${feature.edges.join(', ')}]; the predictions are compared bin by bin, so give both model sources the same profile (the primary's)`);
      }
    }
  }
}
