/**
 * The Pulumi door runs the constructs' validations as `cdk8s synth` does, and a program that `cdk8s synth` refuses
 * fails through Pulumi with the same message, before the refused objects are registered.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { App, Chart, Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { kubernetesObjectsOf } from './mocks';

type PulumiSide = typeof import('modelship/pulumi');
type CdkSide = typeof import('modelship');
let mp: PulumiSide;
let mc: CdkSide;

/** Secrets are referred to by name; Pulumi programs import them into a throwaway cdk8s scope. */
const references = new Chart(new App(), 'references');
const secret = (name: string) => kplus.Secret.fromSecretName(references, `${name}-${Math.random()}`, name);

/** The message `cdk8s synth` fails with, or undefined when it synthesizes. */
function cdk8sFailure(build: (chart: Chart) => void): string | undefined {
  const chart = new Chart(Testing.app(), 'fraud', { namespace: 'risk' });
  build(chart);
  try {
    Testing.synth(chart);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/** Runs a Pulumi program and returns the message it failed with (undefined if none) and what it registered. */
async function pulumiRun(program: () => void) {
  let failure: string | undefined;
  const objects = await kubernetesObjectsOf(() => {
    try {
      program();
    } catch (error) {
      failure = (error as Error).message;
    }
  });
  return { failure, objects };
}

describe('modelship/pulumi runs the constructs\' validations', () => {
  before(async () => {
    mp = await import('modelship/pulumi');
    mc = await import('modelship');
  });

  // The runtime's environment closes /metrics (`--auth-exempt health`) while the service checks tokens: Prometheus
  // would get 401 on every scrape unless the monitoring sends a scrape token.
  const closeMetrics = (service: InstanceType<CdkSide['ModelService']>) => {
    service.deployment.containers[0].env.addVariable('MODELSHIP_AUTH_EXEMPT', kplus.EnvValue.fromValue('health'));
  };
  const secure = (side: CdkSide | PulumiSide) => ({ model: side.ModelSource.fromImage('r/m:1'), tlsSecret: secret('fraud-tls'), authTokenSecret: secret('fraud-tokens') });

  it('fails the program as `cdk8s synth` does when the runtime\'s environment closes /metrics and no scrape token is set', async () => {
    const expected = cdk8sFailure((chart) => {
      const service = new mc.ModelService(chart, 'fraud', secure(mc));
      closeMetrics(service);
      new mc.ModelMonitoring(chart, 'fraud-monitoring', { service });
    });
    assert.match(expected ?? '', /^Validation failed with the following errors:\n {2}\[fraud\/fraud-monitoring\] the runtime's \/metrics needs a bearer token \(--auth-exempt is not health-and-metrics\), but 'scrapeTokenSecret' is not set: Prometheus would get 401 on every scrape$/);

    const { failure, objects } = await pulumiRun(() => {
      const service = new mp.ModelService('fraud', { ...secure(mp), namespace: 'risk', customize: closeMetrics });
      new mp.ModelMonitoring('fraud-monitoring', { service });
    });
    assert.equal(failure, expected);
    assert.deepEqual(objects.filter((r) => r.inputs.kind === 'ServiceMonitor' || r.inputs.kind === 'PrometheusRule'), [], 'nothing of the refused monitoring is registered');
  });

  it('registers the same program once the monitoring sends a scrape token, as `cdk8s synth` writes it', async () => {
    const withToken = { scrapeTokenSecret: secret('fraud-scrape') };
    assert.equal(cdk8sFailure((chart) => {
      const service = new mc.ModelService(chart, 'fraud', secure(mc));
      closeMetrics(service);
      new mc.ModelMonitoring(chart, 'fraud-monitoring', { service, ...withToken });
    }), undefined);
    const { failure, objects } = await pulumiRun(() => {
      const service = new mp.ModelService('fraud', { ...secure(mp), namespace: 'risk', customize: closeMetrics });
      new mp.ModelMonitoring('fraud-monitoring', { service, ...withToken });
    });
    assert.equal(failure, undefined);
    const monitor = objects.find((r) => r.inputs.kind === 'ServiceMonitor')!;
    assert.deepEqual(monitor.inputs.spec.endpoints[0].authorization, { type: 'Bearer', credentials: { name: 'fraud-scrape', key: 'token' } });
  });

  it('runs every validation of the chart, an escape hatch\'s too, before the component registers anything', async () => {
    const refuse = (service: InstanceType<CdkSide['ModelService']>) => {
      service.node.addValidation({ validate: () => ['the cluster has no GPU nodes; remove \'gpus\''] });
    };
    const expected = cdk8sFailure((chart) => refuse(new mc.ModelService(chart, 'fraud', { model: mc.ModelSource.fromImage('r/m:1'), gpus: 1 })));
    assert.equal(expected, 'Validation failed with the following errors:\n  [fraud/fraud] the cluster has no GPU nodes; remove \'gpus\'');
    const { failure, objects } = await pulumiRun(() => new mp.ModelService('fraud', { model: mp.ModelSource.fromImage('r/m:1'), gpus: 1, namespace: 'risk', customize: refuse }));
    assert.equal(failure, expected);
    assert.deepEqual(objects, []);
  });
});
