/**
 * The HTTP+JSON floor: a bare node:http server that reads and parses the same JSON body the runtime would and
 * answers a fixed response of the same size. No server that parses JSON over HTTP on Node can beat it.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const response = process.argv[2] ?? '{}';
const server = createServer((request, reply) => {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    JSON.parse(Buffer.concat(chunks).toString('utf8'));
    reply.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(response) });
    reply.end(response);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
