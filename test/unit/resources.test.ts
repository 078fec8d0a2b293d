/** The container's limits from fake cgroup trees (v2, v1, nested, none), and what the runtime derives from them. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { UNLIMITED_MEMORY_DEFAULTS } from '@modelship/contract';
import {
  memoryDerivedLimits, parseServeSettings, PEAK_BYTES_PER_BODY_BYTE, PEAK_BYTES_PER_GRPC_MESSAGE_BYTE, PEAK_BYTES_PER_OUTPUT_BYTE, withMemoryLimits,
} from '../../runtime/src/config';
import { readContainerResources } from '../../runtime/src/resources';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const scratch = mkdtempSync(join(tmpdir(), 'modelship-cgroup-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

let trees = 0;
/** A fake cgroup mount: files by path relative to the root, and /proc/self/cgroup's text. */
function tree(files: Record<string, string>, membership = '0::/\n') {
  const root = join(scratch, `tree-${trees++}`);
  mkdirSync(root, { recursive: true });
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  const procSelfCgroup = join(root, 'proc-self-cgroup');
  writeFileSync(procSelfCgroup, membership);
  return { cgroupRoot: root, procSelfCgroup, cores: 16, machineMemory: 64 * GiB };
}

describe('container resources', () => {
  it('reads cgroup v2 cpu.max and memory.max, rounding CPUs up', () => {
    const resources = readContainerResources(tree({ 'cgroup.controllers': 'cpu memory', 'cpu.max': '150000 100000\n', 'memory.max': `${512 * MiB}\n` }));
    assert.deepEqual(resources, { cpus: 2, memoryBytes: 512 * MiB, cpuLimited: true, memoryLimited: true, cgroup: 'v2' });
  });

  it('takes "max" in cgroup v2 as no limit: the machine counts', () => {
    const resources = readContainerResources(tree({ 'cgroup.controllers': 'cpu memory', 'cpu.max': 'max 100000\n', 'memory.max': 'max\n' }));
    assert.deepEqual(resources, { cpus: 16, memoryBytes: 64 * GiB, cpuLimited: false, memoryLimited: false, cgroup: 'v2' });
  });

  it('reads the process\'s own cgroup and takes the smallest limit on the way up to the root', () => {
    const resources = readContainerResources(tree({
      'cgroup.controllers': 'cpu memory',
      'kubepods/memory.max': `${GiB}\n`, 'kubepods/cpu.max': 'max 100000\n',
      'kubepods/pod1/ctr/memory.max': 'max\n', 'kubepods/pod1/ctr/cpu.max': '50000 100000\n',
    }, '0::/kubepods/pod1/ctr\n'));
    assert.deepEqual(resources, { cpus: 1, memoryBytes: GiB, cpuLimited: true, memoryLimited: true, cgroup: 'v2' });
  });

  it('reads the mount\'s root when the process\'s cgroup path is not under it (no cgroup namespace)', () => {
    const resources = readContainerResources(tree({ 'cgroup.controllers': 'cpu memory', 'cpu.max': '400000 100000\n', 'memory.max': `${2 * GiB}\n` }, '0::/system.slice/docker-abc.scope\n'));
    assert.equal(resources.cpus, 4);
    assert.equal(resources.memoryBytes, 2 * GiB);
  });

  it('falls back to cgroup v1: cfs quota and period, memory.limit_in_bytes, its "unlimited" number, and cpu,cpuacct', () => {
    const v1 = readContainerResources(tree({
      'cpu,cpuacct/cpu.cfs_quota_us': '250000\n', 'cpu,cpuacct/cpu.cfs_period_us': '100000\n',
      'memory/memory.limit_in_bytes': `${768 * MiB}\n`,
    }, '4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n'));
    assert.deepEqual(v1, { cpus: 3, memoryBytes: 768 * MiB, cpuLimited: true, memoryLimited: true, cgroup: 'v1' });
    const unlimited = readContainerResources(tree({
      'cpu/cpu.cfs_quota_us': '-1\n', 'cpu/cpu.cfs_period_us': '100000\n', 'memory/memory.limit_in_bytes': '9223372036854771712\n',
    }));
    assert.deepEqual(unlimited, { cpus: 16, memoryBytes: 64 * GiB, cpuLimited: false, memoryLimited: false, cgroup: 'v1' });
    const nested = readContainerResources(tree({
      'memory/memory.limit_in_bytes': '9223372036854771712\n', 'memory/pods/memory.limit_in_bytes': `${300 * MiB}\n`,
      'memory/pods/a/memory.limit_in_bytes': '9223372036854771712\n',
    }, '4:memory:/pods/a\n'));
    assert.equal(nested.memoryBytes, 300 * MiB);
  });

  it('bounds the quota by the cores the process can run on, and a limit by the machine\'s memory', () => {
    const resources = readContainerResources(tree({ 'cgroup.controllers': '', 'cpu.max': '6400000 100000\n', 'memory.max': `${128 * GiB}\n` }));
    assert.deepEqual(resources, { cpus: 16, memoryBytes: 64 * GiB, cpuLimited: false, memoryLimited: false, cgroup: 'v2' });
  });

  it('reports no cgroup when there is none, and survives unreadable or malformed files', () => {
    assert.deepEqual(readContainerResources({ ...tree({}), cgroupRoot: join(scratch, 'absent') }), { cpus: 16, memoryBytes: 64 * GiB, cpuLimited: false, memoryLimited: false, cgroup: 'none' });
    const malformed = readContainerResources(tree({ 'cgroup.controllers': '', 'cpu.max': 'lots\n', 'memory.max': '-5\n' }));
    assert.deepEqual(malformed, { cpus: 16, memoryBytes: 64 * GiB, cpuLimited: false, memoryLimited: false, cgroup: 'v2' });
    const zeroPeriod = readContainerResources(tree({ 'cgroup.controllers': '', 'cpu.max': '100000 0\n' }));
    assert.equal(zeroPeriod.cpus, 16);
  });
});

describe('limits derived from memory', () => {
  const limited = (memoryBytes: number) => ({ cpus: 2, memoryBytes, cpuLimited: true, memoryLimited: true, cgroup: 'v2' as const });
  const fixed = UNLIMITED_MEMORY_DEFAULTS;

  it('keeps the fixed defaults without a memory limit, and never exceeds them with one', () => {
    const unlimited = { maxBodyBytes: fixed.maxBodyBytes, maxGrpcMessageBytes: fixed.maxBodyBytes, maxResponseBytes: fixed.maxResponseBytes };
    assert.deepEqual(memoryDerivedLimits({ memoryBytes: 64 * GiB, memoryLimited: false }), unlimited);
    assert.deepEqual(memoryDerivedLimits({ memoryBytes: 60 * GiB, memoryLimited: true }), unlimited);
  });

  it('gives a quarter of the memory beyond the runtime\'s own to a body and a quarter to an answer, over their cost per byte', () => {
    const spare = 512 * MiB - 128 * MiB;
    assert.deepEqual(memoryDerivedLimits(limited(512 * MiB)), {
      maxBodyBytes: Math.floor(spare / 4 / PEAK_BYTES_PER_BODY_BYTE),
      maxGrpcMessageBytes: Math.floor(spare / 4 / PEAK_BYTES_PER_GRPC_MESSAGE_BYTE),
      maxResponseBytes: Math.floor(spare / 4 / PEAK_BYTES_PER_OUTPUT_BYTE),
    });
    assert.deepEqual(Object.values(memoryDerivedLimits(limited(100 * MiB))), [64 * 1024, 64 * 1024, 64 * 1024], 'a floor for tiny containers');
  });

  it('fills only the limits left at 0: an explicit flag wins, for gRPC too', () => {
    const resources = limited(512 * MiB);
    const limits = memoryDerivedLimits(resources);
    const derived = withMemoryLimits(parseServeSettings(['--model-repository', '/m'], {}), resources);
    assert.deepEqual([derived.maxBodyBytes, derived.maxGrpcMessageBytes, derived.maxResponseBytes], [limits.maxBodyBytes, limits.maxGrpcMessageBytes, limits.maxResponseBytes]);
    const explicit = withMemoryLimits(parseServeSettings(['--model-repository', '/m', '--max-body-bytes', '4096'], { MODELSHIP_MAX_RESPONSE_BYTES: '8192' }), resources);
    assert.deepEqual([explicit.maxBodyBytes, explicit.maxGrpcMessageBytes, explicit.maxResponseBytes], [4096, 4096, 8192]);
  });
});
