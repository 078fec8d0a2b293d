/**
 * Real cgroups for the runtime processes a test or benchmark starts, where this machine lets us make them (as root,
 * with the memory or cpu controller mounted writable): a child of the cgroup this process is in, with a memory or
 * CPU limit the kernel enforces. startRuntime puts the runtime in it before node starts (its `cgroups` option), so
 * the runtime reads the limit from /proc/self/cgroup exactly as it would in a pod.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = '/sys/fs/cgroup';

export interface TestCgroup {
  /** The file a process's pid is written to, to move it into this cgroup. */
  readonly procs: string;
  /** Highest memory use the kernel charged to the cgroup, in bytes (memory cgroups only). */
  peakBytes(): number | undefined;
  /** How many processes the kernel's OOM killer ended in the cgroup (memory cgroups only). */
  oomKills(): number | undefined;
  /** Microseconds the CPU quota held the cgroup's threads back (cpu cgroups only). */
  throttledMicros(): number | undefined;
  /** Removes the cgroup; its processes must have exited. */
  remove(): void;
}

let made = 0;

function ownPath(controller: string): string | undefined {
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const [, controllers, path] = line.split(':');
    if (controller === '' ? controllers === '' : controllers?.split(',').includes(controller)) return path;
  }
  return undefined;
}

/** A new cgroup under this process's own for `controller`, or undefined when this machine does not allow it. */
function create(controller: 'memory' | 'cpu', configure: (dir: string, v2: boolean) => void): TestCgroup | undefined {
  const v2 = existsSync(join(ROOT, 'cgroup.controllers'));
  const mount = v2 ? ROOT : [join(ROOT, controller), join(ROOT, 'cpu,cpuacct')].find((dir) => existsSync(join(dir, 'cgroup.procs')));
  const own = ownPath(v2 ? '' : controller);
  if (!mount || own === undefined) return undefined;
  const dir = join(mount, own, `modelship-test-${process.pid}-${made++}`);
  try {
    mkdirSync(dir);
    configure(dir, v2);
  } catch {
    try { rmdirSync(dir); } catch { /* never made */ }
    return undefined;
  }
  const read = (file: string) => { try { return readFileSync(join(dir, file), 'utf8'); } catch { return undefined; } };
  const field = (file: string, name: string) => {
    const match = new RegExp(`^${name} (\\d+)$`, 'm').exec(read(file) ?? '');
    return match ? Number(match[1]) : undefined;
  };
  return {
    procs: join(dir, 'cgroup.procs'),
    peakBytes: () => {
      const text = read(v2 ? 'memory.peak' : 'memory.max_usage_in_bytes');
      return text === undefined ? undefined : Number(text.trim());
    },
    oomKills: () => field(v2 ? 'memory.events' : 'memory.oom_control', 'oom_kill'),
    throttledMicros: () => {
      if (v2) return field('cpu.stat', 'throttled_usec');
      const nanos = field('cpu.stat', 'throttled_time');
      return nanos === undefined ? undefined : nanos / 1000;
    },
    remove: () => {
      try { rmdirSync(dir); } catch { /* still in use, or gone */ }
    },
  };
}

/** A cgroup whose memory limit the kernel enforces (an OOM kill past it, as in a pod). */
export function memoryCgroup(limitBytes: number): TestCgroup | undefined {
  return create('memory', (dir, v2) => writeFileSync(join(dir, v2 ? 'memory.max' : 'memory.limit_in_bytes'), String(limitBytes)));
}

/** A cgroup with a CPU quota of `cpus` CPUs per 100 ms period. */
export function cpuCgroup(cpus: number): TestCgroup | undefined {
  const period = 100_000;
  return create('cpu', (dir, v2) => {
    if (v2) writeFileSync(join(dir, 'cpu.max'), `${Math.round(cpus * period)} ${period}`);
    else {
      writeFileSync(join(dir, 'cpu.cfs_period_us'), String(period));
      writeFileSync(join(dir, 'cpu.cfs_quota_us'), String(Math.round(cpus * period)));
    }
  });
}

/** Makes `dir` a fake cgroup v2 tree with these limits, for MODELSHIP_TEST_CGROUP_ROOT where no real one can be made. */
export function fakeCgroupTree(dir: string, limits: { memoryBytes?: number; cpus?: number }): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'cgroup.controllers'), 'cpu memory\n');
  writeFileSync(join(dir, 'memory.max'), limits.memoryBytes === undefined ? 'max\n' : `${limits.memoryBytes}\n`);
  writeFileSync(join(dir, 'cpu.max'), limits.cpus === undefined ? 'max 100000\n' : `${Math.round(limits.cpus * 100_000)} 100000\n`);
  return dir;
}
