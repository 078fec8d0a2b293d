/**
 * The floors no Node server can beat:
 * - at `/`, the HTTP+JSON floor: read and parse the same JSON body the runtime would, answer a fixed response of
 *   the same size;
 * - at `/bytes/N`, the transport floor for large tensors: read the body without looking at it and answer N bytes,
 *   i.e. only move the same bytes in and out as a binary inference does.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const response = process.argv[2] ?? '{}';
const server = createServer((request, reply) => {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    const body = Buffer.concat(chunks);
    const bytes = /^\/bytes\/(\d+)$/.exec(request.url ?? '');
    if (bytes) {
      reply.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes[1] });
      reply.end(Buffer.alloc(Number(bytes[1])));
      return;
    }
    JSON.parse(body.toString('utf8'));
    reply.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(response) });
    reply.end(response);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
