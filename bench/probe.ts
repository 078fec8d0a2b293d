/**
 * A health-probe client in a process of its own (so the load generator's event loop cannot delay it): GETs the
 * URL every `interval` ms over one keep-alive connection, as a kubelet probe would, and on SIGTERM prints the
 * latencies in ms as one JSON line. Used by bench/spinning.ts.
 */
import { Agent, get } from 'node:http';
import { performance } from 'node:perf_hooks';

const [url, intervalText] = process.argv.slice(2);
const interval = Number(intervalText ?? 10);
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
const latencies: number[] = [];
let stopping = false;

function probe(): void {
  const started = performance.now();
  get(url, { agent }, (response) => {
    response.resume();
    response.on('end', () => {
      latencies.push(performance.now() - started);
      if (!stopping) setTimeout(probe, Math.max(0, interval - (performance.now() - started)));
    });
  }).on('error', () => { if (!stopping) setTimeout(probe, interval); });
}

process.on('SIGTERM', () => {
  stopping = true;
  process.stdout.write(`${JSON.stringify(latencies)}\n`, () => process.exit(0));
});
probe();
