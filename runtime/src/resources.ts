/**
 * The CPU and memory the container may use, read from its cgroup. A pod's limits reach the process only there:
 * `os.availableParallelism()` counts the node's cores (or the cpuset), and `os.totalmem()` the node's memory, so a
 * server sized from those on a 64-core node with a 2-CPU limit starts 64 threads that the CFS quota then throttles,
 * and accepts requests the OOM killer ends.
 *
 * cgroup v2: `cpu.max` ("max 100000" or "<quota> <period>") and `memory.max` ("max" or bytes). cgroup v1:
 * `cpu.cfs_quota_us` (-1 for none) with `cpu.cfs_period_us`, and `memory.limit_in_bytes` (a huge number for none).
 * The process's own cgroup is found through /proc/self/cgroup; where that path does not exist under the mount (a
 * container without a cgroup namespace sees its own cgroup at the mount's root), the mount's root is read. Limits
 * of the enclosing cgroups apply too, so the smallest limit from the process's cgroup up to the root counts.
 */
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import { dirname, join, relative } from 'node:path';

export interface ContainerResources {
  /** CPUs the process may use: the cgroup's quota rounded up, at most the cores it can run on; at least 1. */
  readonly cpus: number;
  /** Bytes the process may use: the cgroup's memory limit, at most the machine's memory. */
  readonly memoryBytes: number;
  /** Whether `cpus` and `memoryBytes` come from a cgroup limit rather than from the machine. */
  readonly cpuLimited: boolean;
  readonly memoryLimited: boolean;
  /** Which cgroup interface was read: 'v2', 'v1', or 'none' when neither could be found. */
  readonly cgroup: 'v2' | 'v1' | 'none';
}

export interface ResourceSources {
  /** Where the cgroup file systems are mounted. @default '/sys/fs/cgroup' */
  readonly cgroupRoot?: string;
  /** The process's cgroup membership, as in /proc/self/cgroup. @default '/proc/self/cgroup' */
  readonly procSelfCgroup?: string;
  /** Cores the process can run on. @default os.availableParallelism() */
  readonly cores?: number;
  /** The machine's memory. @default os.totalmem() */
  readonly machineMemory?: number;
}

/**
 * The cgroup v1 value that means "no limit" is the largest page-aligned 64-bit number, which differs by page size;
 * anything from 2^62 up is no limit in practice.
 */
const V1_UNLIMITED = 2 ** 62;

/** Reads the container's limits; every path can be pointed elsewhere (tests use fake cgroup trees). */
export function readContainerResources(sources: ResourceSources = {}): ContainerResources {
  const root = sources.cgroupRoot ?? '/sys/fs/cgroup';
  const cores = sources.cores ?? availableParallelism();
  const machineMemory = sources.machineMemory ?? totalmem();
  const membership = readText(sources.procSelfCgroup ?? '/proc/self/cgroup') ?? '';
  const limits = existsSync(join(root, 'cgroup.controllers')) ? { cgroup: 'v2' as const, ...readV2(root, membership) }
    : existsSync(join(root, 'memory')) || existsSync(join(root, 'cpu')) ? { cgroup: 'v1' as const, ...readV1(root, membership) }
      : { cgroup: 'none' as const, cpuQuota: undefined, memory: undefined };
  const quotaCpus = limits.cpuQuota === undefined ? undefined : Math.max(1, Math.ceil(limits.cpuQuota));
  return {
    cpus: Math.max(1, Math.min(cores, quotaCpus ?? cores)),
    memoryBytes: Math.min(machineMemory, limits.memory ?? machineMemory),
    cpuLimited: quotaCpus !== undefined && quotaCpus < cores,
    memoryLimited: limits.memory !== undefined && limits.memory < machineMemory,
    cgroup: limits.cgroup,
  };
}

interface Limits {
  /** CPUs as quota over period, undefined when unlimited. */
  readonly cpuQuota: number | undefined;
  readonly memory: number | undefined;
}

function readV2(root: string, membership: string): Limits {
  // The v2 line is "0::/path".
  const path = /^0::(.*)$/m.exec(membership)?.[1];
  const dirs = cgroupDirs(root, path);
  return {
    cpuQuota: smallest(dirs, (dir) => {
      const [quota, period] = (readText(join(dir, 'cpu.max')) ?? '').trim().split(/\s+/);
      return quota === 'max' || !positive(quota) || !positive(period) ? undefined : Number(quota) / Number(period);
    }),
    memory: smallest(dirs, (dir) => {
      const value = readText(join(dir, 'memory.max'))?.trim();
      return value === undefined || value === 'max' || !positive(value) ? undefined : Number(value);
    }),
  };
}

function readV1(root: string, membership: string): Limits {
  const pathOf = (controller: string) => {
    for (const line of membership.split('\n')) {
      const [, controllers, path] = line.split(':');
      if (controllers?.split(',').includes(controller)) return path;
    }
    return undefined;
  };
  // Docker and Kubernetes mount "cpu,cpuacct" and link "cpu" to it; a lone "cpu" mount is the same files.
  const cpuMount = [join(root, 'cpu'), join(root, 'cpu,cpuacct')].find(existsSync);
  const cpuDirs = cpuMount ? cgroupDirs(cpuMount, pathOf('cpu')) : [];
  const memoryDirs = existsSync(join(root, 'memory')) ? cgroupDirs(join(root, 'memory'), pathOf('memory')) : [];
  return {
    cpuQuota: smallest(cpuDirs, (dir) => {
      const quota = readText(join(dir, 'cpu.cfs_quota_us'))?.trim();
      const period = readText(join(dir, 'cpu.cfs_period_us'))?.trim();
      return !positive(quota) || !positive(period) ? undefined : Number(quota) / Number(period);
    }),
    memory: smallest(memoryDirs, (dir) => {
      const value = readText(join(dir, 'memory.limit_in_bytes'))?.trim();
      return !positive(value) || Number(value) >= V1_UNLIMITED ? undefined : Number(value);
    }),
  };
}

/** The process's cgroup directory and each one above it up to the mount's root. */
function cgroupDirs(mount: string, path: string | undefined): string[] {
  const own = path && path !== '/' ? join(mount, path) : mount;
  let dir = existsSync(own) && !relative(mount, own).startsWith('..') ? own : mount;
  const dirs = [dir];
  while (dir !== mount) {
    dir = dirname(dir);
    dirs.push(dir);
  }
  return dirs;
}

function smallest(dirs: readonly string[], read: (dir: string) => number | undefined): number | undefined {
  let result: number | undefined;
  for (const dir of dirs) {
    const value = read(dir);
    if (value !== undefined && (result === undefined || value < result)) result = value;
  }
  return result;
}

function positive(text: string | undefined): boolean {
  return text !== undefined && /^\d+$/.test(text) && Number(text) > 0;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

let cached: ContainerResources | undefined;

/**
 * The limits of the container this process runs in, read once. MODELSHIP_TEST_CGROUP_ROOT points the reader at a
 * fake cgroup tree; it exists for tests on machines where a real cgroup cannot be made, and is no setting.
 */
export function containerResources(): ContainerResources {
  cached ??= readContainerResources(process.env.MODELSHIP_TEST_CGROUP_ROOT ? { cgroupRoot: process.env.MODELSHIP_TEST_CGROUP_ROOT } : {});
  return cached;
}
