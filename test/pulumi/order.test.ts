/**
 * The objects the Pulumi components register do not depend on when the program creates them: a program that
 * awaits between its components (several turns of the event loop and a real timer) registers exactly what the same
 * program registers without awaits, and what `cdk8s synth` writes for the same constructs, in every order the API
 * allows. What cannot be order-free — an autoscaler meeting a service registered with fixed replicas — fails loudly.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApiObject, Chart, JsonPatch, Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { kubernetesObjectsOf, type Registered } from './mocks';

type PulumiSide = typeof import('modelship/pulumi');
type CdkSide = typeof import('modelship');
let mp: PulumiSide;
let mc: CdkSide;

/** What an `await` on I/O gives the rest of the program: several turns of the event loop, then a timer. */
const pause = async () => {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  await sleep(20);
};

interface Spec {
  readonly service: (side: CdkSide | PulumiSide) => Record<string, any>;
  readonly autoscaler: (side: CdkSide | PulumiSide) => Record<string, any>;
  readonly monitoring: (side: CdkSide | PulumiSide) => Record<string, any>;
}

const SPECS: Readonly<Record<string, Spec>> = {
  cpu: {
    service: (side) => ({ model: side.ModelSource.fromUri('https://models.example.com/fraud/3/model.onnx', { sha256: 'b'.repeat(64) }), maxBatchSize: 16 }),
    autoscaler: () => ({ minReplicas: 2, maxReplicas: 10 }),
    monitoring: () => ({ extraLabels: { release: 'kps' } }),
  },
  keda: {
    service: (side) => ({ model: side.ModelSource.fromImage('registry/m:1'), exposure: side.Exposure.loadBalancer() }),
    autoscaler: (side) => ({ minReplicas: 0, maxReplicas: 3, signal: side.ScalingSignal.inFlightRequestsWithKeda({ target: 2, prometheusAddress: 'http://p:9090', activation: { query: 'sum(rate(nginx_ingress_controller_requests{service="keda"}[1m]))' } }) }),
    monitoring: () => ({ podMonitor: true }),
  },
  adapter: {
    service: (side) => ({ model: side.ModelSource.fromImage('registry/n:2') }),
    autoscaler: (side) => ({ maxReplicas: 4, signal: side.ScalingSignal.inFlightRequestsWithPrometheusAdapter({ target: 3 }) }),
    monitoring: () => ({ dashboard: false }),
  },
};

/** One step of a program: a component of a service (named after its spec), or an await. */
type Step = readonly ['service' | 'autoscaler' | 'monitoring' | 'monitoring+autoscaler', string] | 'await';

/** The program through the Pulumi door; with `awaits`, each 'await' step pauses it. */
async function pulumiProgram(steps: readonly Step[], awaits: boolean): Promise<void> {
  const services = new Map<string, InstanceType<PulumiSide['ModelService']>>();
  const autoscalers = new Map<string, InstanceType<PulumiSide['ModelAutoscaler']>>();
  for (const step of steps) {
    if (step === 'await') {
      if (awaits) await pause();
      continue;
    }
    const [kind, name] = step;
    const spec = SPECS[name];
    const service = services.get(name)!;
    if (kind === 'service') services.set(name, new mp.ModelService(name, { ...spec.service(mp) as any, namespace: 'risk', autoscaled: true }));
    if (kind === 'autoscaler') autoscalers.set(name, new mp.ModelAutoscaler(`${name}-autoscaler`, { service, ...spec.autoscaler(mp) }));
    if (kind.startsWith('monitoring')) {
      new mp.ModelMonitoring(`${name}-monitoring`, { service, autoscaler: kind === 'monitoring+autoscaler' ? autoscalers.get(name) : undefined, ...spec.monitoring(mp) });
    }
  }
}

/** The same program through the cdk8s door: one chart per service, named as the Pulumi components are. */
function cdk8sObjects(steps: readonly Step[]): any[] {
  const charts: Chart[] = [];
  const services = new Map<string, InstanceType<CdkSide['ModelService']>>();
  const autoscalers = new Map<string, InstanceType<CdkSide['ModelAutoscaler']>>();
  for (const step of steps) {
    if (step === 'await') continue;
    const [kind, name] = step;
    const spec = SPECS[name];
    const service = services.get(name)!;
    if (kind === 'service') {
      const chart = new Chart(Testing.app(), name, { namespace: 'risk' });
      charts.push(chart);
      services.set(name, new mc.ModelService(chart, name, spec.service(mc) as any));
    }
    if (kind === 'autoscaler') autoscalers.set(name, new mc.ModelAutoscaler(Chart.of(service), `${name}-autoscaler`, { service, ...spec.autoscaler(mc) }));
    if (kind.startsWith('monitoring')) {
      new mc.ModelMonitoring(Chart.of(service), `${name}-monitoring`, { service, autoscaler: kind === 'monitoring+autoscaler' ? autoscalers.get(name) : undefined, ...spec.monitoring(mc) });
    }
  }
  return charts.flatMap((chart) => Testing.synth(chart));
}

/** Every object the cdk8s door writes is registered with the same content, and nothing else is. */
function assertSameAsCdk8s(registered: readonly Registered[], expected: readonly any[]) {
  assert.deepEqual(registered.map((r) => `${r.inputs.kind} ${r.inputs.metadata.name}`).sort(), expected.map((o) => `${o.kind} ${o.metadata.name}`).sort());
  for (const object of expected) {
    const match = registered.find((r) => r.inputs.kind === object.kind && r.inputs.metadata.name === object.metadata.name)!;
    assert.deepEqual(match.inputs, object, `${object.kind} ${object.metadata.name}`);
  }
}

describe('modelship/pulumi: the registered objects do not depend on when the components are created', () => {
  before(async () => {
    mp = await import('modelship/pulumi');
    mc = await import('modelship');
  });

  const programs: Array<[string, Step[]]> = [
    ['service, then after awaits its autoscaler and monitoring', [['service', 'cpu'], 'await', ['autoscaler', 'cpu'], 'await', ['monitoring+autoscaler', 'cpu']]],
    ['the same with KEDA scaling to zero and a PodMonitor', [['service', 'keda'], 'await', ['autoscaler', 'keda'], 'await', ['monitoring+autoscaler', 'keda']]],
    ['reversed: the monitoring before the autoscaler', [['service', 'adapter'], 'await', ['monitoring', 'adapter'], 'await', ['autoscaler', 'adapter']]],
    ['interleaved: three services, their components mixed across awaits', [
      ['service', 'cpu'], ['service', 'keda'], 'await', ['autoscaler', 'keda'], ['monitoring', 'cpu'], 'await',
      ['service', 'adapter'], ['autoscaler', 'cpu'], 'await', ['monitoring+autoscaler', 'keda'], ['autoscaler', 'adapter'], 'await', ['monitoring+autoscaler', 'adapter'],
    ]],
  ];
  for (const [label, steps] of programs) {
    it(label, async () => {
      const awaited = await kubernetesObjectsOf(() => pulumiProgram(steps, true));
      const synchronous = await kubernetesObjectsOf(() => pulumiProgram(steps, false));
      assert.deepEqual(awaited, synchronous, 'the same resources, names and inputs with and without awaits');
      assertSameAsCdk8s(awaited, cdk8sObjects(steps));
      for (const deployment of awaited.filter((r) => r.inputs.kind === 'Deployment')) {
        assert.equal(deployment.inputs.spec.replicas, undefined, 'an autoscaled Deployment leaves the replica count to its autoscaler');
      }
    });
  }

  it('registers a service with `autoscaled` but no autoscaler yet without replicas, and refuses fixed replicas with it', async () => {
    const objects = await kubernetesObjectsOf(() => new mp.ModelService('alone', { model: mp.ModelSource.fromImage('registry/m:1'), autoscaled: true }));
    assert.equal(objects.find((r) => r.inputs.kind === 'Deployment')!.inputs.spec.replicas, undefined);
    assert.throws(() => new mp.ModelService('fixed', { model: mp.ModelSource.fromImage('registry/m:1'), autoscaled: true, replicas: 3 }),
      /'autoscaled' and 'replicas' \(3\) exclude each other/);
  });

  it('keeps the earlier form: an autoscaler created in the same synchronous block as its undeclared service', async () => {
    const steps: Step[] = [['service', 'cpu'], ['autoscaler', 'cpu'], ['monitoring+autoscaler', 'cpu']];
    const objects = await kubernetesObjectsOf(() => {
      const service = new mp.ModelService('cpu', { ...SPECS.cpu.service(mp) as any, namespace: 'risk' });
      const autoscaler = new mp.ModelAutoscaler('cpu-autoscaler', { service, ...SPECS.cpu.autoscaler(mp) });
      new mp.ModelMonitoring('cpu-monitoring', { service, autoscaler, ...SPECS.cpu.monitoring(mp) });
    });
    assertSameAsCdk8s(objects, cdk8sObjects(steps));
  });

  it('fails loudly when an await separates an undeclared service from its autoscaler, instead of registering replicas the autoscaler fights', async () => {
    let failure: unknown;
    await kubernetesObjectsOf(async () => {
      const service = new mp.ModelService('late', { model: mp.ModelSource.fromImage('registry/m:1') });
      await pause();
      try {
        new mp.ModelAutoscaler('late-autoscaler', { service });
      } catch (error) {
        failure = error;
      }
    });
    assert.match(String(failure), /ModelAutoscaler 'late-autoscaler' comes after ModelService 'late' registered its Deployment with 2 replicas[\s\S]*give ModelService 'late' 'autoscaled: true'/);
  });

  it('applies `customize` escape hatches before anything is registered, whenever the next component comes', async () => {
    const patch = (deployment: kplus.Deployment) => {
      deployment.containers[0].env.addVariable('MODELSHIP_LOG_LEVEL', kplus.EnvValue.fromValue('debug'));
      ApiObject.of(deployment).addJsonPatch(JsonPatch.add('/spec/revisionHistoryLimit', 3));
    };
    const objects = await kubernetesObjectsOf(async () => {
      const service = new mp.ModelService('custom', { model: mp.ModelSource.fromImage('registry/m:1'), namespace: 'risk', customize: (construct) => patch(construct.deployment) });
      await pause();
      new mp.ModelMonitoring('custom-monitoring', {
        service, customize: (construct) => ApiObject.of(construct.prometheusRule).addJsonPatch(JsonPatch.add('/metadata/annotations', { team: 'risk' })),
      });
    });
    const chart = new Chart(Testing.app(), 'custom', { namespace: 'risk' });
    const service = new mc.ModelService(chart, 'custom', { model: mc.ModelSource.fromImage('registry/m:1') });
    patch(service.deployment);
    const monitoring = new mc.ModelMonitoring(chart, 'custom-monitoring', { service });
    ApiObject.of(monitoring.prometheusRule).addJsonPatch(JsonPatch.add('/metadata/annotations', { team: 'risk' }));
    assertSameAsCdk8s(objects, Testing.synth(chart));
  });

  it('fails the next component when an earlier component\'s objects were changed after Pulumi registered them', async () => {
    let failure: unknown;
    await kubernetesObjectsOf(() => {
      const service = new mp.ModelService('changed', { model: mp.ModelSource.fromImage('registry/m:1'), namespace: 'risk', replicas: 2 });
      // Too late: the Deployment was registered when the service was created.
      service.construct.deployment.containers[0].env.addVariable('X', kplus.EnvValue.fromValue('1'));
      try {
        new mp.ModelMonitoring('changed-monitoring', { service });
      } catch (error) {
        failure = error;
      }
    });
    assert.match(String(failure), /Deployment '[^']+' of ModelService 'changed' changed after Pulumi registered it[\s\S]*found when creating ModelMonitoring 'changed-monitoring'[\s\S]*'customize' of ModelService 'changed'/);
  });
});
