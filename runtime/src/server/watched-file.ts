/**
 * Files that are re-read when they change, without a restart: the bearer-token file and the TLS certificate and key.
 * Mounted Secrets change the Kubernetes way — the kubelet writes a new `..<timestamp>` directory and swaps a `..data`
 * symlink to it, and the files are symlinks through `..data` — so the files' directories are watched (a watch on a
 * file itself would stay on the old target), plus a periodic stat, because watch events are not delivered on every
 * volume type (some network and FUSE volumes, some container runtimes' bind mounts).
 */
import { statSync, watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';

/** How often the files are stat'ed in case no watch event arrives. */
export const DEFAULT_POLL_MS = 5000;
/** Watch events come in bursts (a symlink swap is several renames and a removal); reload once per burst. */
const DEBOUNCE_MS = 50;

/**
 * Calls `reload` after each burst of watch events in the files' directories, and whenever a periodic stat finds that
 * a file changed. It does not call it at first: the owner reads the files itself right after constructing this (in
 * the same tick, so that no change can fall between the snapshot taken here and that first read).
 */
export class WatchedFiles {
  private readonly watchers: FSWatcher[] = [];
  private readonly poll: NodeJS.Timeout;
  private debounce: NodeJS.Timeout | undefined;
  /** The files' stat fingerprint when `reload` was last called (or when watching began). */
  private fingerprint: string;

  /** `what` names the files in log lines ("the token file"). */
  constructor(
    readonly paths: readonly string[], private readonly reload: () => void, what: string, log: Logger, pollMs = DEFAULT_POLL_MS,
  ) {
    this.fingerprint = this.statFingerprint();
    for (const dir of new Set(paths.map((path) => dirname(path)))) {
      const fallBack = (reason: string) => log.warn(`${reason}; checking ${what} every ${pollMs} ms`);
      try {
        const watcher = watch(dir, { persistent: false }, () => this.scheduleReload());
        watcher.on('error', (error) => {
          fallBack(`watching ${dir} failed (${error.message})`);
          watcher.close();
        });
        this.watchers.push(watcher);
      } catch (error) {
        fallBack(`cannot watch ${dir} (${(error as Error).message})`);
      }
    }
    this.poll = setInterval(() => {
      if (this.statFingerprint() !== this.fingerprint) this.fire();
    }, pollMs).unref();
  }

  /** Stops watching; `reload` is not called again. */
  close(): void {
    for (const watcher of this.watchers) watcher.close();
    this.watchers.length = 0;
    clearInterval(this.poll);
    clearTimeout(this.debounce);
  }

  private scheduleReload(): void {
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => this.fire(), DEBOUNCE_MS).unref();
  }

  private fire(): void {
    // Taken before the owner reads: a change during its read shows at the next check and is read again.
    this.fingerprint = this.statFingerprint();
    this.reload();
  }

  /**
   * Identifies the files' current content cheaply: each one's inode (a rename or symlink swap changes it), size and
   * times, through symlinks; a missing file counts as such, so that its return is noticed too.
   */
  private statFingerprint(): string {
    return this.paths.map((path) => {
      try {
        const stat = statSync(path);
        return `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeMs}:${stat.ctimeMs}`;
      } catch (error) {
        return (error as NodeJS.ErrnoException).code ?? 'unreadable';
      }
    }).join('|');
  }
}
