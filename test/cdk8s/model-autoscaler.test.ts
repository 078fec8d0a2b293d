/**
 * ModelAutoscaler and its service: one autoscaler per service, registered on it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Chart, Testing } from 'cdk8s';
import { ModelAutoscaler, ModelService, ModelSource, ScalingSignal } from 'modelship';

const image = ModelSource.fromImage('registry/m:1');
const chart = () => new Chart(Testing.app(), 'test', { namespace: 'risk' });
const keda = (options: Partial<Parameters<typeof ScalingSignal.inFlightRequestsWithKeda>[0]> = {}) =>
  ScalingSignal.inFlightRequestsWithKeda({ target: 4, prometheusAddress: 'http://prometheus.monitoring:9090', ...options });

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
