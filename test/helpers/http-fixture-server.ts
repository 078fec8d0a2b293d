/**
 * A throwaway HTTP server on 127.0.0.1 (a free port) whose answer to the n-th request is scripted by the test, and
 * which counts the requests it saw. Used to drive `modelship fetch` through successes, failures and retries.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Answers one request; `index` counts from 0 across the server's lifetime. */
export type FixtureHandler = (request: IncomingMessage, response: ServerResponse, index: number) => void;

export interface FixtureServer {
  /** Base URL, e.g. http://127.0.0.1:41234 */
  readonly url: string;
  /** Requests seen so far. */
  readonly requests: number;
  /** Request paths in arrival order. */
  readonly paths: readonly string[];
  close(): Promise<void>;
}

export async function startFixtureServer(handler: FixtureHandler): Promise<FixtureServer> {
  const paths: string[] = [];
  const server: Server = createServer((request, response) => {
    const index = paths.length;
    paths.push(request.url ?? '');
    handler(request, response, index);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get requests() { return paths.length; },
    paths,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Sends `body` as a 200 application/octet-stream answer. */
export function sendBytes(response: ServerResponse, body: Uint8Array): void {
  response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.byteLength });
  response.end(body);
}

/** Sends an empty-bodied error status. */
export function sendStatus(response: ServerResponse, status: number): void {
  response.writeHead(status, { 'content-type': 'text/plain' });
  response.end(`status ${status}\n`);
}

/** Promises the full length of `body`, writes its first half, then drops the connection. */
export function sendHalfThenDrop(response: ServerResponse, body: Uint8Array): void {
  response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.byteLength });
  response.write(body.subarray(0, Math.floor(body.byteLength / 2)), () => {
    setTimeout(() => response.socket?.destroy(), 20);
  });
}
