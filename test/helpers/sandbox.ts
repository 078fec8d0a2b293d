/** What the bubblewrap sandboxes shaped like the runtime's pod share. */
import { dirname } from 'node:path';

/**
 * The image's `node` inside a sandbox: the node running the tests (the version the image ships, in CI), bound
 * read-only at /opt/node and first on PATH, rather than whatever node the host has under /usr. Goes before
 * `--remount-ro /`: the mount point is created on the sandbox's tmpfs root.
 */
export function sandboxNode(): string[] {
  return ['--ro-bind', dirname(dirname(process.execPath)), '/opt/node', '--setenv', 'PATH', '/opt/node/bin:/usr/bin:/bin'];
}
