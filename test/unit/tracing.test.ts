/**
 * Tracing's configuration from OTEL_* variables (runtime/src/tracing/environment.ts), and the OpenMetrics exposition
 * with exemplars (runtime/src/open-metrics.ts). The spans themselves are judged end to end in
 * test/runtime/tracing.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Counter, Histogram, Registry } from 'prom-client';
import { UsageError } from '../../runtime/src/errors';
import { acceptsOpenMetrics, Exemplars, openMetricsText } from '../../runtime/src/open-metrics';
import { tracingConfig } from '../../runtime/src/tracing/environment';

const usage = (fn: () => unknown, pattern: RegExp) =>
  assert.throws(fn, (error: unknown) => error instanceof UsageError && pattern.test(error.message));

describe('tracing configuration from OTEL_* variables', () => {
  it('is off without an endpoint, or when disabled', () => {
    assert.equal(tracingConfig({}), undefined);
    assert.equal(tracingConfig({ OTEL_TRACES_SAMPLER: 'always_on', OTEL_SERVICE_NAME: 'x' }), undefined);
    assert.equal(tracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: '  ' }), undefined, 'an empty variable counts as unset');
    assert.equal(tracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' }), undefined);
    assert.equal(tracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' }), undefined);
  });

  it('adds /v1/traces to the general endpoint and takes the traces endpoint as given', () => {
    assert.equal(tracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })!.endpoint, 'http://collector:4318/v1/traces');
    assert.equal(tracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://collector/otlp/' })!.endpoint, 'https://collector/otlp/v1/traces');
    assert.equal(tracingConfig({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://traces:4318/custom/path',
    })!.endpoint, 'http://traces:4318/custom/path');
  });

  it('defaults to parentbased_always_on, and reads the ratio only for the ratio samplers', () => {
    const base = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' };
    assert.deepEqual([tracingConfig(base)!.sampler, tracingConfig(base)!.ratio], ['parentbased_always_on', 1]);
    const ratio = tracingConfig({ ...base, OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25' })!;
    assert.deepEqual([ratio.sampler, ratio.ratio], ['parentbased_traceidratio', 0.25]);
    assert.equal(tracingConfig({ ...base, OTEL_TRACES_SAMPLER: 'always_on', OTEL_TRACES_SAMPLER_ARG: '0.25' })!.ratio, 1);
  });

  it('reads the batch span processor variables, and leaves the unset ones to the SDK', () => {
    const config = tracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_BSP_SCHEDULE_DELAY: '200', OTEL_BSP_MAX_QUEUE_SIZE: '4096' })!;
    assert.deepEqual(config.batch, { scheduledDelayMillis: 200, maxQueueSize: 4096, maxExportBatchSize: undefined, exportTimeoutMillis: undefined });
  });

  it('refuses what it cannot honour, naming the variable, the value and what it accepts', () => {
    const base = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' };
    usage(() => tracingConfig({ ...base, OTEL_TRACES_SAMPLER: 'jaeger_remote' }), /OTEL_TRACES_SAMPLER is 'jaeger_remote'; use one of always_on/);
    usage(() => tracingConfig({ ...base, OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: 'half' }), /OTEL_TRACES_SAMPLER_ARG is 'half'/);
    usage(() => tracingConfig({ ...base, OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '-0.1' }), /from 0 to 1/);
    usage(() => tracingConfig({ ...base, OTEL_TRACES_EXPORTER: 'zipkin' }), /OTEL_TRACES_EXPORTER is 'zipkin'.*'otlp'/);
    usage(() => tracingConfig({ ...base, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json' }), /OTEL_EXPORTER_OTLP_TRACES_PROTOCOL is 'http\/json'/);
    usage(() => tracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'grpc://c:4317' }), /http:\/\/ or https:\/\//);
    usage(() => tracingConfig({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'not a url' }), /OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is 'not a url', not a URL/);
    usage(() => tracingConfig({ ...base, OTEL_BSP_SCHEDULE_DELAY: '0' }), /OTEL_BSP_SCHEDULE_DELAY is '0'; it must be a whole number above 0/);
    usage(() => tracingConfig({ ...base, OTEL_SDK_DISABLED: 'yes' }), /OTEL_SDK_DISABLED is 'yes'; use true or false/);
  });
});

describe('OpenMetrics exposition', () => {
  it('is what Prometheus asks for when it stores exemplars', () => {
    assert.ok(acceptsOpenMetrics('application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1'));
    assert.ok(!acceptsOpenMetrics('text/plain;version=0.0.4'));
    assert.ok(!acceptsOpenMetrics(undefined));
  });

  it('renders families as OpenMetrics names them, with an exemplar on the bucket a traced value fell in', async () => {
    const registry = new Registry();
    const counter = new Counter({ name: 'x_requests_total', help: 'Requests "served".\nTwo lines.', labelNames: ['code'], registers: [registry] });
    const histogram = new Histogram({ name: 'x_seconds', help: 'Latency.', labelNames: ['model'], buckets: [0.1, 1], registers: [registry] });
    counter.inc({ code: '200' }, 3);
    const exemplars = new Exemplars({ x_seconds: [0.1, 1] });
    const key = Exemplars.seriesKey('x_seconds', { model: 'm' });
    histogram.observe({ model: 'm' }, 0.5);
    exemplars.record('x_seconds', key, 0.5, { trace_id: 'a'.repeat(32), span_id: 'b'.repeat(16) });
    histogram.observe({ model: 'm' }, 7);
    exemplars.record('x_seconds', key, 7, { trace_id: 'c'.repeat(32), span_id: 'd'.repeat(16) });
    const lines = (await openMetricsText(registry, exemplars)).split('\n');
    assert.deepEqual(lines.slice(0, 3), ['# HELP x_requests Requests \\"served\\".\\nTwo lines.', '# TYPE x_requests counter', 'x_requests_total{code="200"} 3']);
    assert.match(lines.find((line) => line.startsWith('x_seconds_bucket{le="0.1"'))!, /^x_seconds_bucket\{le="0.1",model="m"\} 0$/);
    assert.match(lines.find((line) => line.startsWith('x_seconds_bucket{le="1"'))!, new RegExp(`^x_seconds_bucket\\{le="1",model="m"\\} 1 # \\{trace_id="${'a'.repeat(32)}",span_id="${'b'.repeat(16)}"\\} 0.5 \\d+\\.\\d{3}$`));
    assert.match(lines.find((line) => line.startsWith('x_seconds_bucket{le="+Inf"'))!, new RegExp(`\\} 2 # \\{trace_id="${'c'.repeat(32)}",span_id="${'d'.repeat(16)}"\\} 7 `));
    assert.ok(lines.includes('x_seconds_sum{model="m"} 7.5') && lines.includes('x_seconds_count{model="m"} 2'));
    assert.deepEqual(lines.slice(-2), ['# EOF', '']);
  });
});
