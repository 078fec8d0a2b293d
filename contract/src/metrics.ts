/**
 * The metric names and labels the runtime exports. The alert rules, recording rules, dashboards and autoscalers
 * import these constants instead of spelling names, so a rule can never name a metric the runtime does not export.
 * @see docs/runtime.md (Metrics)
 */
export const METRIC = {
  /** counter: finished inference requests, labelled model, version, protocol, code. */
  requests: 'modelship_inference_requests_total',
  /** histogram: arrival to response, labelled model, version, protocol, code. */
  requestDuration: 'modelship_inference_request_duration_seconds',
  /** histogram: time a request waits for a batch or a free session. */
  queueDuration: 'modelship_inference_queue_duration_seconds',
  /** histogram: `session.run` time per executed batch. */
  computeDuration: 'modelship_inference_compute_duration_seconds',
  /** histogram: items per executed batch. */
  batchSize: 'modelship_inference_batch_size',
  /** gauge: requests accepted and not yet answered — the autoscaling signal. */
  inFlight: 'modelship_inference_in_flight_requests',
  /** gauge: requests waiting to run. */
  queueDepth: 'modelship_inference_queue_depth',
  /** gauge: 1 when the model version can serve. */
  modelReady: 'modelship_model_ready',
  /** gauge: seconds the last load of the model version took (including warm-up). */
  modelLoadDuration: 'modelship_model_load_duration_seconds',
  /** gauge fixed at 1, carrying the model's sha256 and opset as labels. */
  modelInfo: 'modelship_model_info',
  /** counter: served rows that fell in each bin of the drift profile, labelled model, version, tensor, feature, bin. */
  driftBins: 'modelship_drift_bin_total',
  /** gauge: the drift profile's reference share of each bin, labelled as driftBins. */
  driftReferenceRatio: 'modelship_drift_reference_ratio',
  /** counter: explanations answered (`:explain`), labelled model, version, explainer, code; not inference requests. */
  explainRequests: 'modelship_explain_requests_total',
  /** histogram: seconds from an explanation's arrival to its answer, labelled model, version, explainer. */
  explainDuration: 'modelship_explain_duration_seconds',
  /** counter: payload events (--payload-log-url) dropped because the sink was slow or down. */
  payloadEventsDropped: 'modelship_payload_events_dropped_total',
} as const;

export type MetricName = (typeof METRIC)[keyof typeof METRIC];

export const LABEL = {
  model: 'model',
  version: 'version',
  protocol: 'protocol',
  code: 'code',
  sha256: 'sha256',
  opset: 'opset',
  tensor: 'tensor',
  feature: 'feature',
  bin: 'bin',
  explainer: 'explainer',
} as const;

/** The `explainer` label's values: the methods `:explain` offers. */
export const EXPLAINER = { kernelShap: 'kernel_shap', occlusion: 'occlusion' } as const;
export type Explainer = (typeof EXPLAINER)[keyof typeof EXPLAINER];

/** The `protocol` label's values. */
export const PROTOCOL = { rest: 'rest', grpc: 'grpc' } as const;
export type Protocol = (typeof PROTOCOL)[keyof typeof PROTOCOL];

/**
 * Latency buckets in seconds, from 100 µs to 30 s. Latency objectives must name one of these boundaries, since a
 * histogram can only count requests "faster than X" at a bucket edge.
 */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

/** Batch-size buckets: powers of two up to the largest batch a model may be configured for. */
export const BATCH_SIZE_BUCKETS: readonly number[] = [1, 2, 4, 8, 16, 32, 64, 128, 256];
