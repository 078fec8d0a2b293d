/**
 * A rolling update, simulated on loopback the way Kubernetes runs one with the ModelService's settings: two runtime
 * replicas behind a proxy that follows readiness (test/helpers/readiness-proxy.ts), continuous load through it, and
 * each replica replaced in turn — surge a new replica, wait until it is in rotation, then terminate the old one as
 * the kubelet does: the pod turns Terminating (the endpoints controller drops it; the removal reaches the proxy a
 * moment later), the preStop hook sleeps, SIGTERM, and SIGKILL if the grace period runs out. The preStop delay and
 * grace period are the ones the construct renders. Zero requests may fail; without the preStop delay, some do.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { Chart, Testing } from 'cdk8s';
import { ModelService, ModelSource } from 'modelship';
import * as ort from '../../runtime/src/model/onnxruntime';
import type { Pool } from 'undici';
import { closedLoad, loadPool, mismatches, MLP_ARGS, type Outcome } from '../../bench/soak';
import { MODELS } from '../helpers/paths';
import { ReadinessProxy } from '../helpers/readiness-proxy';
import { runReference } from '../helpers/reference';
import { postJson, startRuntime, type RuntimeProcess } from '../helpers/runtime-process';
import { sleep } from '../helpers/wait';

/** What the ModelService renders by default: the preStop sleep, the grace period and the runtime's drain timeout. */
function constructTermination(): { preStopMs: number; graceMs: number; drainArg: string } {
  const chart = new Chart(Testing.app(), 'rolling');
  new ModelService(chart, 'mlp', { model: ModelSource.fromImage('registry.example.com/mlp:1') });
  const deployment = (Testing.synth(chart) as any[]).find((o) => o.kind === 'Deployment');
  const pod = deployment.spec.template.spec;
  const command: string[] = pod.containers[0].lifecycle.preStop.exec.command;
  const preStopMs = Number(/setTimeout\(\(\) => \{\}, (\d+)\)/.exec(command.join(' '))?.[1]);
  const drainArg: string = pod.containers[0].args.find((a: string) => a.startsWith('--drain-timeout='));
  assert.ok(preStopMs > 0 && drainArg, `a preStop sleep and a drain timeout: ${JSON.stringify(command)}`);
  assert.deepEqual(deployment.spec.strategy.rollingUpdate, { maxSurge: 1, maxUnavailable: 0 }, 'a new pod is ready before an old one stops');
  return { preStopMs, graceMs: pod.terminationGracePeriodSeconds * 1000, drainArg };
}

const TERMINATION = constructTermination();
/**
 * How long the endpoints controller's removal takes to reach the proxy. In clusters, endpoint changes reach
 * kube-proxy and ingress controllers in about a second; the preStop delay must cover it.
 */
const PROPAGATION_MS = 1000;
const CONCURRENCY = 32;
/** A request that keeps the old replica busy for about 1 s (0.2 ms an iteration) while it is replaced. */
const SLOW_ITERATIONS = 5_000;

const slowInputs = () => ({
  iterations: new ort.Tensor('int64', BigInt64Array.from([BigInt(SLOW_ITERATIONS)]), []),
  x: new ort.Tensor('float32', Float32Array.from({ length: 64 }, (_, i) => i / 64), [1, 64]),
});
const slowRequest = () => ({
  inputs: [
    { name: 'iterations', datatype: 'INT64', shape: [], data: [SLOW_ITERATIONS] },
    { name: 'x', datatype: 'FP32', shape: [1, 64], data: Array.from({ length: 64 }, (_, i) => i / 64) },
  ],
});
const startReplica = () => startRuntime([...MLP_ARGS, '--model', `slow=${MODELS.slow}`, TERMINATION.drainArg]);

interface Replacement {
  readonly next: RuntimeProcess;
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Requests the old replica had in flight when SIGTERM came, from its drain log. */
  readonly inFlightAtSigterm: unknown;
  /** The long request sent to the old replica just before it was terminated, and whether it was still running at SIGTERM. */
  readonly slow: { status: number; body: any; doneAt: number };
  readonly slowRunningAtSigterm: boolean;
  readonly terminatedInMs: number;
}

/**
 * Replaces `old` with a new replica as a Deployment with maxSurge 1, maxUnavailable 0 does, and terminates `old` as
 * the kubelet does with the given preStop delay and grace period.
 */
async function replace(proxy: ReadinessProxy, old: RuntimeProcess, preStopMs: number): Promise<Replacement> {
  const next = await startReplica();
  proxy.add(next.url);
  await proxy.waitFor(next.url, true);
  // A long request on the old replica, sent directly (a client holding a connection), in flight as it terminates.
  const slow = postJson(`${old.url}/v2/models/slow/infer`, slowRequest()).then((answer) => ({ ...answer, doneAt: performance.now() }));
  await sleep(100);
  const terminating = performance.now();
  // The pod turns Terminating: the endpoints controller removes it, and the preStop hook runs, at the same time.
  const removed = proxy.terminate(old.url, PROPAGATION_MS);
  await sleep(preStopMs);
  old.process.kill('SIGTERM');
  const sigtermAt = performance.now();
  const kill = setTimeout(() => old.process.kill('SIGKILL'), Math.max(0, TERMINATION.graceMs - (performance.now() - terminating)));
  const exitCode = await old.exited;
  clearTimeout(kill);
  await removed;
  const slowAnswer = await slow;
  return {
    next, exitCode, signal: old.process.signalCode, slow: slowAnswer, slowRunningAtSigterm: slowAnswer.doneAt > sigtermAt,
    terminatedInMs: performance.now() - terminating,
    inFlightAtSigterm: old.logs.find((line) => /draining/.test(line.msg))?.inFlight,
  };
}

interface LoadRecord {
  ok: number;
  readonly failures: Outcome[];
  readonly samples: Outcome[];
}

/** Continuous load through the proxy until `stop()` is called (or 30 s pass). */
function loadThrough(pool: Pool, firstSeq: number): { record: LoadRecord; stop(): Promise<void> } {
  const record: LoadRecord = { ok: 0, failures: [], samples: [] };
  let stopped = false;
  const done = closedLoad(pool, {
    concurrency: CONCURRENCY, until: performance.now() + 30_000, firstSeq,
    onOutcome: (outcome) => {
      if (outcome.status === 200) {
        record.ok++;
        if (outcome.seq % 53 === 0) record.samples.push(outcome);
      } else {
        record.failures.push(outcome);
      }
      return !stopped;
    },
  });
  return { record, stop: async () => { stopped = true; await done; } };
}

const describeFailure = (o: Outcome) => o.error ?? `${o.status}: ${o.body?.slice(0, 160)}`;

describe('a rolling update behind a proxy that follows readiness', () => {
  let proxy: ReadinessProxy;
  let pool: Pool;
  const replicas: RuntimeProcess[] = [];
  before(async () => {
    replicas.push(...await Promise.all([startReplica(), startReplica()]));
    proxy = await ReadinessProxy.start({ pollIntervalMs: 200, failureThreshold: 2 });
    for (const replica of replicas) proxy.add(replica.url);
    for (const replica of replicas) await proxy.waitFor(replica.url, true);
    pool = loadPool(proxy.url, CONCURRENCY);
  });
  after(async () => {
    await pool?.destroy();
    await proxy?.close();
    await Promise.all(replicas.map((r) => r.stop()));
  });

  it(`replaces both replicas under load without a failed request (preStop ${TERMINATION.preStopMs} ms, grace ${TERMINATION.graceMs / 1000} s)`, { timeout: 40_000 }, async (t) => {
    const [a, b] = replicas;
    const load = loadThrough(pool, 20_000_000);
    await sleep(1000);
    const okBefore = load.record.ok;
    const updates: Array<[string, RuntimeProcess, Replacement]> = [];
    for (const [name, old] of [['A', a], ['B', b]] as const) {
      const replacement = await replace(proxy, old, TERMINATION.preStopMs);
      replicas.push(replacement.next);
      updates.push([name, old, replacement]);
      await sleep(300);
    }
    await sleep(500);
    await load.stop();

    const { ok, failures, samples } = load.record;
    t.diagnostic(`${ok} requests ok, ${failures.length} failed through the proxy (${okBefore} before the update began); proxy: ${proxy.retries} retried after a connect failure, ${proxy.noBackend} with no backend, ${proxy.badGateway} bad gateway`);
    for (const [name, old, r] of updates) {
      t.diagnostic(`${name}: served ${JSON.stringify(proxy.stats(old.url).responses)}; its replacement ${JSON.stringify(proxy.stats(r.next.url).responses)}; `
        + `SIGTERM found ${String(r.inFlightAtSigterm)} in flight; exit ${r.exitCode ?? r.signal} ${r.terminatedInMs.toFixed(0)} ms after it began terminating; slow request ${r.slow.status}`);
    }
    assert.deepEqual(failures.map(describeFailure).slice(0, 5), [], `${failures.length} requests failed`);
    assert.ok(ok > 1000, `${ok} requests went through`);
    assert.equal(proxy.badGateway + proxy.noBackend, 0);
    const expectedSlow = Array.from((await runReference(MODELS.slow, slowInputs())).y.data as Float32Array);
    for (const [name, old, r] of updates) {
      assert.equal(r.exitCode, 0, `${name} drained and exited 0 by itself, before the grace period: ${old.stderr.join('\n')}`);
      assert.ok(r.terminatedInMs < TERMINATION.graceMs);
      // Nothing from the proxy: only the long direct request, if it had not finished yet.
      assert.equal(r.inFlightAtSigterm, r.slowRunningAtSigterm ? 1 : 0, `${name}: the preStop delay let traffic move away before SIGTERM`);
      assert.equal(r.slow.status, 200, `${name}'s long request finished: ${JSON.stringify(r.slow.body)}`);
      assert.deepEqual(r.slow.body.outputs[0].data, expectedSlow);
      assert.ok((proxy.stats(old.url).responses[200] ?? 0) > 0 && (proxy.stats(r.next.url).responses[200] ?? 0) > 0, `${name} and its replacement both served`);
    }
    const wrong = await mismatches(samples.map((o) => ({ seq: o.seq, x: o.x, body: o.body! })));
    t.diagnostic(`${samples.length} answers checked against onnxruntime, ${wrong.length} wrong`);
    assert.deepEqual(wrong.slice(0, 3), []);
  });

  // The control: the same update without the preStop delay fails requests, so the delay is what the first test proves.
  it('fails requests when SIGTERM comes with no preStop delay (the control)', { timeout: 30_000 }, async (t) => {
    const old = replicas.find((r) => r.process.exitCode === null && proxy.stats(r.url).inRotation)!;
    const load = loadThrough(pool, 30_000_000);
    await sleep(500);
    const replacement = await replace(proxy, old, 0);
    replicas.push(replacement.next);
    await sleep(300);
    await load.stop();

    const { ok, failures } = load.record;
    const byKind: Record<string, number> = {};
    for (const o of failures) byKind[o.status ?? 'socket error'] = (byKind[o.status ?? 'socket error'] ?? 0) + 1;
    t.diagnostic(`without preStop: ${ok} ok, ${failures.length} failed ${JSON.stringify(byKind)}; SIGTERM found ${String(replacement.inFlightAtSigterm)} in flight; old replica served ${JSON.stringify(proxy.stats(old.url).responses)}`);
    assert.equal(replacement.exitCode, 0);
    assert.ok(failures.length > 0, 'with no preStop delay, requests the proxy still sends to the draining replica fail');
    assert.ok(failures.some((o) => o.status === 503 && /shutting down/.test(o.body ?? '')), 'they are the draining replica\'s 503s, passed on');
  });
});
