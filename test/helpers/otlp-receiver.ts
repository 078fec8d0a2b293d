/**
 * A small OTLP/HTTP trace receiver: what a collector's `otlphttp` receiver does, on a free loopback port. It takes
 * `POST /v1/traces` with protobuf bodies, decodes them with the OTLP definitions vendored from a release
 * (test/fixtures/otlp), and keeps every span with its resource, ids as lower-case hex, attributes as plain values.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as protobuf from 'protobufjs';
import { REPO_ROOT } from './paths';

const PROTO_ROOT = join(REPO_ROOT, 'test', 'fixtures', 'otlp', 'opentelemetry-proto-v1.11.0');
const TRACE_SERVICE = 'opentelemetry/proto/collector/trace/v1/trace_service.proto';

export type AttributeValue = string | number | boolean | AttributeValue[] | undefined;

export interface ReceivedLink {
  readonly traceId: string;
  readonly spanId: string;
}

export interface ReceivedSpan {
  readonly traceId: string;
  readonly spanId: string;
  /** '' for a root span. */
  readonly parentSpanId: string;
  /** The W3C tracestate the span carries (its parent's, unless changed). */
  readonly traceState: string;
  readonly name: string;
  /** OTLP's SpanKind: 1 internal, 2 server. */
  readonly kind: number;
  readonly startNanos: bigint;
  readonly endNanos: bigint;
  readonly attributes: Readonly<Record<string, AttributeValue>>;
  readonly links: readonly ReceivedLink[];
  /** OTLP's status code: 0 unset, 1 ok, 2 error. */
  readonly statusCode: number;
  readonly resource: Readonly<Record<string, AttributeValue>>;
  readonly scope: string;
}

export interface OtlpReceiver {
  /** The base URL, for OTEL_EXPORTER_OTLP_ENDPOINT. */
  readonly endpoint: string;
  readonly spans: ReceivedSpan[];
  /** Each export request's headers, in arrival order. */
  readonly requests: IncomingHttpHeaders[];
  close(): Promise<void>;
}

let requestType: protobuf.Type | undefined;

function exportRequestType(): protobuf.Type {
  if (!requestType) {
    const root = new protobuf.Root();
    root.resolvePath = (_origin, target) => (target.startsWith('/') ? target : join(PROTO_ROOT, target));
    root.loadSync(TRACE_SERVICE, { keepCase: false });
    requestType = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
  }
  return requestType;
}

/** Decodes one ExportTraceServiceRequest body into its spans. */
export function decodeTraces(body: Uint8Array): ReceivedSpan[] {
  const message = exportRequestType().toObject(exportRequestType().decode(body), { longs: String, bytes: Buffer, enums: Number, defaults: true, oneofs: true }) as any;
  const spans: ReceivedSpan[] = [];
  for (const resourceSpans of message.resourceSpans ?? []) {
    const resource = attributesOf(resourceSpans.resource?.attributes);
    for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
      for (const span of scopeSpans.spans ?? []) {
        spans.push({
          traceId: hex(span.traceId), spanId: hex(span.spanId), parentSpanId: hex(span.parentSpanId), traceState: span.traceState ?? '',
          name: span.name, kind: kindNumber(span.kind),
          startNanos: BigInt(span.startTimeUnixNano), endNanos: BigInt(span.endTimeUnixNano),
          attributes: attributesOf(span.attributes),
          links: (span.links ?? []).map((link: any) => ({ traceId: hex(link.traceId), spanId: hex(link.spanId) })),
          statusCode: kindNumber(span.status?.code ?? 0),
          resource, scope: scopeSpans.scope?.name ?? '',
        });
      }
    }
  }
  return spans;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const requests: IncomingHttpHeaders[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      if (request.method !== 'POST' || request.url !== '/v1/traces' || request.headers['content-type'] !== 'application/x-protobuf') {
        response.writeHead(404).end();
        return;
      }
      requests.push(request.headers);
      spans.push(...decodeTraces(Buffer.concat(chunks)));
      // An empty ExportTraceServiceResponse: every span accepted.
      response.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    requests,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

function hex(bytes: Buffer | Uint8Array | undefined): string {
  return bytes ? Buffer.from(bytes).toString('hex') : '';
}

/** Enums arrive as numbers or names depending on the field; both become the number. */
function kindNumber(value: number | string): number {
  if (typeof value === 'number') return value;
  const names = ['SPAN_KIND_UNSPECIFIED', 'SPAN_KIND_INTERNAL', 'SPAN_KIND_SERVER', 'SPAN_KIND_CLIENT', 'SPAN_KIND_PRODUCER', 'SPAN_KIND_CONSUMER'];
  const statuses = ['STATUS_CODE_UNSET', 'STATUS_CODE_OK', 'STATUS_CODE_ERROR'];
  return Math.max(names.indexOf(value), statuses.indexOf(value));
}

function attributesOf(list: any[] | undefined): Record<string, AttributeValue> {
  return Object.fromEntries((list ?? []).map((entry) => [entry.key, valueOf(entry.value)]));
}

function valueOf(value: any): AttributeValue {
  if (!value) return undefined;
  if (value.stringValue !== undefined && value.value === 'stringValue') return value.stringValue;
  if (value.value === 'intValue') return Number(value.intValue);
  if (value.value === 'doubleValue') return value.doubleValue;
  if (value.value === 'boolValue') return value.boolValue;
  if (value.value === 'arrayValue') return (value.arrayValue.values ?? []).map(valueOf);
  return value.stringValue ?? undefined;
}
