// The `modelship` entry point: the cdk8s constructs, and the runtime contract they are written against.
export * as contract from '@modelship/contract';
export { type ClusterIpOptions, Exposure, type IngressOptions, type LoadBalancerOptions, ModelService, type ModelServiceProps, type ResourceProps, type PayloadLogging, type TracingOptions, DEFAULT_RUNTIME_IMAGE } from './cdk8s/model-service';
export type { OnnxFileInfo, OptimizeLevel, Quantize, TensorSpec } from '@modelship/contract';
export {
  ModelSource, type FromUriOptions, type FromFileOptions, type BroughtProfileOptions, type UriProfile, type ModelOptimization, CONFIG_MAP_MODEL_LIMIT_BYTES,
} from './cdk8s/model-source';
export { ModelAutoscaler, type ModelAutoscalerProps, ScalingSignal, type InFlightOptions, type KedaInFlightOptions, type KedaActivation } from './cdk8s/model-autoscaler';
export { ModelRoute, type ModelRouteProps, type GatewayReference, type RouteBackend, type RouteMirror, GATEWAY_API_GROUP } from './cdk8s/model-route';
export {
  KServeRuntime, type KServeRuntimeProps, KServeInferenceService, type KServeInferenceServiceProps, KSERVE_CONTAINER, KSERVE_GROUP,
  KSERVE_GRPC_PORT, KSERVE_HTTP_PORT, KSERVE_MODEL_DIR, KSERVE_MODEL_FORMAT, KSERVE_NAME_PLACEHOLDER,
} from './cdk8s/kserve-runtime';
export { type RuntimeSettingsProps } from './cdk8s/runtime-settings';
export { ModelCanary, type ModelCanaryProps, CanaryEngine, DEFAULT_PROMETHEUS_ADDRESS } from './cdk8s/model-canary';
export { canaryChecks, versionSelector, type CanaryCheck, type CanaryObjectives } from './cdk8s/canary-analysis';
export { ModelCredentials, type ModelCredentialsSecretOptions } from './cdk8s/model-credentials';
export * as promql from './cdk8s/promql';
export { LABEL_KEYS } from './cdk8s/labels';
export {
  ModelMonitoring, type ModelMonitoringProps, type LatencyObjective, DEFAULT_RUNBOOK_BASE_URL, ScrapeTls, type ScrapeTlsOptions,
  type ScrapeTlsFromServiceSecretOptions, type ScrapeTlsFromCaOptions, type PlainPrometheusMounts, type DriftMonitoringOptions,
} from './cdk8s/model-monitoring';
export { ALERT, DEFAULT_ALERT_DURATIONS, type AlertDurations, type AlertName } from './cdk8s/rules/alerts';
export { SLO_WINDOWS, BURN_RATE_ALERTS, PER_VERSION_LABELS, DEFAULT_AVAILABILITY_OBJECTIVE, DEFAULT_LATENCY_OBJECTIVE, type Rule, type RuleGroup } from './cdk8s/rules/slo';
export { DRIFT_PSI_FLOOR, DEFAULT_DRIFT_WINDOW, DEFAULT_DRIFT_THRESHOLD, driftPsiRecord, driftPsiExpr, driftShareRecord, driftShareExpr, type DriftRuleOptions } from './cdk8s/rules/drift';
export { type ShadowComparisonOptions } from './cdk8s/shadow-comparison';
export {
  DEFAULT_SHADOW_WINDOW, DEFAULT_SHADOW_PSI_THRESHOLD, DEFAULT_SHADOW_ERROR_RATIO_THRESHOLD, shadowShareRecord, shadowPsiRecord,
  shadowErrorRatioDeltaRecord, type ShadowRuleOptions, type ShadowSide,
} from './cdk8s/rules/shadow';
