/**
 * The served models: loads every version on the session workers, tracks their states, and resolves the
 * `{model}[/versions/{v}]` of a request to a ModelVersion (404 when there is no such thing).
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { readModelConfig, resolveModelConfig, type ModelSettings, type ServeSettings } from '../config';
import { InferenceError, notFound } from '../errors';
import { beforeDeadline } from '../deadline';
import type { RuntimeMetrics } from '../metrics';
import type { ModelEntry } from '../repository';
import type { Spinning } from '@modelship/contract';
import { containerResources, type ContainerResources } from '../resources';
import type { Tracing } from '../tracing/tracing';
import { ModelVersion } from './model-version';
import { SessionWorkerClient } from './session-worker-client';

export class Model {
  constructor(
    readonly name: string,
    /** Ascending by version number; grows and shrinks as the repository changes (refresh). */
    readonly versions: ModelVersion[],
    /** Why the model has nothing to serve at all. */
    readonly problem?: string,
  ) {}

  /** The highest READY version, else the highest: a broken newer version does not hide a working older one. */
  get defaultVersion(): ModelVersion | undefined {
    return [...this.versions].reverse().find((v) => v.state === 'READY') ?? this.versions.at(-1);
  }
}

export class ModelRegistry {
  private readonly models = new Map<string, Model>();
  private readonly workers: SessionWorkerClient[];
  private loading: Promise<void> | undefined;

  constructor(
    entries: readonly ModelEntry[],
    private readonly settings: ServeSettings,
    private readonly metrics: RuntimeMetrics,
    private readonly log: Logger,
    private readonly resources: ContainerResources = containerResources(),
    /** Spans for runs and loads, when tracing is on. */
    private readonly tracing?: Tracing,
  ) {
    // One per CPU the container may use, not per core of the node: more threads than the CPU quota only wait.
    const workerCount = settings.sessionWorkers || Math.max(1, Math.min(resources.cpus, entries.length));
    log.info({ sessionWorkers: workerCount, cpus: resources.cpus }, `${workerCount} session worker(s)${settings.sessionWorkers ? '' : ` (one per CPU, at most one per model: ${resources.cpus} CPU(s), ${entries.length} model(s))`}`);
    this.workers = Array.from({ length: workerCount }, (_, i) => new SessionWorkerClient(i, (error) => this.workerExited(i, error)));
    for (const entry of entries) this.models.set(entry.name, this.createModel(entry));
  }

  private createModel(entry: ModelEntry): Model {
    let settings: ModelSettings;
    try {
      settings = entry.configPath ? readModelConfig(entry.configPath, this.settings) : resolveModelConfig({}, this.settings, 'flags');
    } catch (error) {
      return new Model(entry.name, [], (error as Error).message);
    }
    // onnxruntime's own choice for 0 is a thread per core of the node, which a CPU quota turns into waiting threads.
    if (settings.intraOpThreads === 0) settings = { ...settings, intraOpThreads: this.resources.cpus };
    settings = { ...settings, intraOpSpinning: spinningFor(settings.intraOpSpinning, this.resources) };
    const versions = entry.versions.map((v) => this.createVersion(entry.name, v.version, v.path, settings, v.profilePath));
    return new Model(entry.name, versions, entry.problem);
  }

  private createVersion(name: string, version: number, path: string, settings: ModelSettings, profilePath?: string): ModelVersion {
    const labels = { model: name, version: String(version) };
    const worker = this.workers.reduce((least, w) => (w.hosted < least.hosted ? w : least));
    worker.hosted++;
    const series = this.metrics.forVersion(name, version);
    const created: ModelVersion = new ModelVersion(name, version, path, settings, worker, {
      depth: (depth) => series.queueDepth.set(depth),
      run: (rows, seconds) => {
        series.batchSize.observe(rows);
        series.computeDuration.observe(seconds);
      },
      unbatchable: () => this.log.warn(labels, `model '${name}' version ${version}: its outputs do not follow a merged batch along dim 0; running its requests one by one from now on`),
      drift: ({ drift, baselineProfile }) => {
        if (baselineProfile) {
          created.profile = baselineProfile;
          series.setDriftProfile(baselineProfile);
          this.log.info({ ...labels, rows: baselineProfile.rows, tensors: baselineProfile.tensors.length }, `model '${name}' version ${version}: drift profile taken from the first ${baselineProfile.rows} rows served`);
        }
        if (drift) series.addDrift(drift);
      },
    }, { profilePath, baselineRows: this.settings.driftBaselineRows }, this.tracing?.runTracer(name, version));
    return created;
  }

  /**
   * Takes in what changed in the repository since the last scan. New models and new versions load and warm up
   * while the current ones keep serving; a new version that becomes READY is the default from that moment (each
   * request resolves the default when it arrives), and the older READY versions are drained and unloaded. A new
   * version that fails to load is reported and never replaces a working one. Removed directories are left alone.
   */
  async refresh(entries: readonly ModelEntry[], drainTimeoutSeconds: number): Promise<void> {
    for (const entry of entries) {
      const model = this.models.get(entry.name);
      if (!model || model.versions.length === 0) {
        if (entry.versions.length === 0) continue;
        const created = this.createModel(entry);
        this.models.set(entry.name, created);
        if (created.versions.length === 0) {
          // A broken config: the model stays versionless and is rescanned each poll, so say why once, not each time.
          if (created.problem !== model?.problem) this.log.error({ model: entry.name }, `model '${entry.name}' cannot be served: ${created.problem}`);
          continue;
        }
        this.log.info({ model: entry.name }, `model '${entry.name}' appeared in the repository; loading`);
        await Promise.all(created.versions.map((version) => this.loadVersion(version)));
        continue;
      }
      const known = new Set(model.versions.map((v) => v.version));
      const fresh = entry.versions.filter((v) => !known.has(v.version));
      if (fresh.length === 0) continue;
      for (const found of fresh) {
        const version = this.createVersion(entry.name, found.version, found.path, model.versions[0].settings, found.profilePath);
        model.versions.push(version);
        model.versions.sort((a, b) => a.version - b.version);
        this.log.info({ model: entry.name, version: String(found.version) }, `${version.key} appeared in the repository; loading`);
        await this.loadVersion(version);
      }
      await this.retireSuperseded(model, drainTimeoutSeconds);
    }
  }

  /**
   * Drains and unloads the READY versions older than the model's default, once the default can serve. They stop
   * taking requests together and drain side by side, so several old versions cost one drain timeout, not several.
   */
  private async retireSuperseded(model: Model, drainTimeoutSeconds: number): Promise<void> {
    const current = model.defaultVersion;
    if (!current || current.state !== 'READY') return;
    const superseded = model.versions.filter((v) => v.version < current.version && v.state === 'READY');
    for (const old of superseded) old.retire();
    const deadline = Date.now() + drainTimeoutSeconds * 1000;
    await Promise.all(superseded.map(async (old) => {
      await beforeDeadline(old.inFlight.idle(), deadline);
      await old.worker.unload(old.key).catch(() => undefined);
      old.worker.hosted--;
      model.versions.splice(model.versions.indexOf(old), 1);
      this.metrics.forget(old.name, old.version);
      this.log.info({ model: old.name, version: String(old.version) }, `${old.key} was superseded by version ${current.version}; drained and unloaded`);
    }));
  }

  /** Loads every version; resolves when each has loaded or failed. Failures are logged, not thrown. */
  loadAll(): Promise<void> {
    this.loading ??= (async () => {
      for (const model of this.models.values()) {
        if (model.problem) this.log.error({ model: model.name }, `model '${model.name}' cannot be served: ${model.problem}`);
      }
      await Promise.all(this.allVersions().map((version) => this.loadVersion(version)));
    })();
    return this.loading;
  }

  private async loadVersion(version: ModelVersion): Promise<void> {
    const labels = { model: version.name, version: String(version.version) };
    this.metrics.modelReady.set(labels, 0);
    const started = performance.now();
    try {
      const loaded = await version.load();
      this.tracing?.traceLoad(version.name, version.version, version.path, started, performance.now());
      this.metrics.modelReady.set(labels, 1);
      this.metrics.modelLoadDuration.set(labels, loaded.loadSeconds);
      this.metrics.setModelInfo(version.name, version.version, loaded.file);
      if (version.profile) this.metrics.forVersion(version.name, version.version).setDriftProfile(version.profile);
      if (loaded.warmupError) {
        this.log.warn({ ...labels }, `${version.key}: warm-up on zeros failed, serving anyway: ${loaded.warmupError}`);
      }
      this.log.info({ ...labels, sha256: loaded.file.sha256, loadSeconds: loaded.loadSeconds, batching: version.queue.batching }, `${version.key} is ready`);
    } catch (error) {
      const reason = (error as Error).message;
      this.tracing?.traceLoad(version.name, version.version, version.path, started, performance.now(), reason);
      version.fail(reason);
      this.log.error({ ...labels, path: version.path }, `${version.key} failed to load: ${reason}`);
    }
  }

  private workerExited(index: number, error: Error): void {
    this.log.error({ worker: index }, `session worker ${index} stopped: ${error.message}`);
    for (const version of this.allVersions()) {
      if (version.worker === this.workers[index] && version.state !== 'UNAVAILABLE') {
        version.fail(error.message);
        this.metrics.modelReady.set({ model: version.name, version: String(version.version) }, 0);
      }
    }
  }

  list(): Model[] {
    return [...this.models.values()];
  }

  allVersions(): ModelVersion[] {
    return this.list().flatMap((model) => [...model.versions]);
  }

  get(name: string): Model {
    const model = this.models.get(name);
    if (!model) throw notFound(`unknown model '${name}'; served models: ${this.list().map((m) => `'${m.name}'`).join(', ') || '(none)'}`);
    return model;
  }

  /** The version a request names, or the default version when it names none. */
  resolve(name: string, version?: string): ModelVersion {
    const model = this.get(name);
    if (version === undefined) {
      const chosen = model.defaultVersion;
      if (!chosen) throw new InferenceError(503, `model '${name}' has no servable version: ${model.problem ?? 'none loaded'}`);
      return chosen;
    }
    const found = /^\d{1,16}$/.test(version) ? model.versions.find((v) => v.version === Number(version)) : undefined;
    if (!found) {
      throw notFound(`model '${name}' has no version '${version}'; available versions: ${model.versions.map((v) => v.version).join(', ') || '(none)'}`);
    }
    return found;
  }

  /** True once loading has finished and at least one version can serve. */
  get ready(): boolean {
    const versions = this.allVersions();
    return versions.every((v) => v.state !== 'LOADING') && versions.some((v) => v.state === 'READY');
  }

  get loadingCount(): number {
    return this.allVersions().filter((v) => v.state === 'LOADING').length;
  }

  /** Resolves once no session worker has a run or load in progress. */
  async idle(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.idle()));
  }

  /** Stops the session workers; wait for `idle()` first. */
  async close(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.terminate()));
  }
}

/**
 * Spinning intra-op threads make each run faster when the cores are there to spin on, and cost throughput and probe
 * latency under a CPU quota, which pays for every spin (docs/benchmarks.md, Intra-op spinning): auto spins only
 * without a quota.
 */
export function spinningFor(choice: Spinning, resources: Pick<ContainerResources, 'cpuLimited'>): 'on' | 'off' {
  if (choice !== 'auto') return choice;
  return resources.cpuLimited ? 'off' : 'on';
}
