/**
 * ModelAutoscaler and its service: one autoscaler per service, registered on it, and KEDA's scale to zero only
 * with a way back (an activation trigger on a metric that exists while no pod runs).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Chart, Testing } from 'cdk8s';
import { ModelAutoscaler, ModelService, ModelSource, ScalingSignal } from 'modelship';
import { METRIC } from '@modelship/contract';
import { assertValidManifests } from '../helpers/k8s-schema';

type Manifest = { apiVersion: string; kind: string; metadata: { name: string }; spec: any };

const image = ModelSource.fromImage('registry/m:1');
const chart = () => new Chart(Testing.app(), 'test', { namespace: 'risk' });
const keda = (options: Partial<Parameters<typeof ScalingSignal.inFlightRequestsWithKeda>[0]> = {}) =>
  ScalingSignal.inFlightRequestsWithKeda({ target: 4, prometheusAddress: 'http://prometheus.monitoring:9090', ...options });
const INGRESS_REQUESTS = 'sum(rate(nginx_ingress_controller_requests{exported_service="fraud"}[2m]))';

describe('ModelAutoscaler registers on its service', () => {
  it('is the service\'s autoscaler', () => {
    const c = chart();
    const service = new ModelService(c, 'fraud', { model: image });
    assert.equal(service.autoscaler, undefined);
    const autoscaler = new ModelAutoscaler(c, 'auto', { service });
    assert.equal(service.autoscaler, autoscaler);
    assert.equal(autoscaler.service, service);
  });

  it('refuses a second autoscaler on the same service, naming both', () => {
    for (const second of [{}, { signal: keda() }]) {
      const c = chart();
      const service = new ModelService(c, 'fraud', { model: image });
      new ModelAutoscaler(c, 'cpu', { service });
      assert.throws(() => new ModelAutoscaler(c, 'other', { service, ...second }),
        /ModelService 'test\/fraud' is already scaled by ModelAutoscaler 'test\/cpu'; ModelAutoscaler 'test\/other' would fight it over the replica count: keep one of them/);
    }
  });
});

describe('KEDA scale to zero needs a way back', () => {
  it('adds an activation trigger that starts one pod while the named metric is above its threshold', () => {
    const c = chart();
    const service = new ModelService(c, 'fraud', { model: image });
    new ModelAutoscaler(c, 'auto', { service, minReplicas: 0, maxReplicas: 5, signal: keda({ activation: { query: INGRESS_REQUESTS, threshold: 0.5 } }) });
    const objects = Testing.synth(c) as Manifest[];
    const scaled = objects.find((o) => o.kind === 'ScaledObject')!;
    assert.equal(scaled.spec.minReplicaCount, 0);
    const [inFlight, activation] = scaled.spec.triggers;
    assert.match(inFlight.metadata.query, new RegExp(`^sum\\(${METRIC.inFlight}\\{`));
    assert.deepEqual(activation, {
      type: 'prometheus',
      metadata: {
        serverAddress: 'http://prometheus.monitoring:9090',
        query: `max((${INGRESS_REQUESTS}) > bool 0.5)`,
        threshold: '1',
        activationThreshold: '0',
        ignoreNullValues: 'true',
      },
    });
    assertValidManifests(objects);
  });

  it('refuses minReplicas 0 without an activation query, saying how to bring the service back', () => {
    const c = chart();
    const service = new ModelService(c, 'fraud', { model: image });
    assert.throws(() => new ModelAutoscaler(c, 'auto', { service, minReplicas: 0, signal: keda() }),
      /'minReplicas' \(0\) has no way back from zero: .*Give ScalingSignal.inFlightRequestsWithKeda an 'activation' query on a metric that exists without pods .*, or set 'minReplicas' to 1 or more/);
  });

  it('refuses an activation query that could never act: above zero, empty, or with a negative threshold', () => {
    const c = chart();
    const service = new ModelService(c, 'fraud', { model: image });
    assert.throws(() => new ModelAutoscaler(c, 'auto', { service, minReplicas: 1, signal: keda({ activation: { query: INGRESS_REQUESTS } }) }),
      /'activation' only wakes a service from zero, but 'minReplicas' \(1\) keeps it above zero: remove 'activation', or set 'minReplicas' to 0/);
    assert.throws(() => keda({ activation: { query: '  ' } }), /'activation.query' \(''\) must be PromQL on a metric that exists while the service has no pod/);
    assert.throws(() => keda({ activation: { query: INGRESS_REQUESTS, threshold: -1 } }), /'activation.threshold' \(-1\) must be a number of 0 or more/);
  });
});

describe('KEDA prometheusAddress', () => {
  it('refuses an address KEDA could not query, quoting it', () => {
    for (const address of ['', 'prometheus:9090', 'prometheus.monitoring.svc', 'ftp://prometheus:9090']) {
      assert.throws(() => keda({ prometheusAddress: address }),
        new RegExp(`'prometheusAddress' \\('${address.replace(/[.:/]/g, '\\$&')}'\\) must be the http\\(s\\) URL of the Prometheus KEDA queries, e.g. 'http://prometheus-operated.monitoring.svc:9090'`), address);
    }
    assert.doesNotThrow(() => keda({ prometheusAddress: 'https://thanos-query.monitoring.svc:10902/' }));
  });
});
