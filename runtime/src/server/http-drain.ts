/**
 * The HTTP side of a drain, as Go's http.Server.Shutdown and Envoy do it: requests on connections that were open
 * before SIGTERM are served, including those whose bytes are still arriving, and answered with `Connection: close`;
 * connections opened after the signal still reach the server (probes keep answering) but get no inference. Idle
 * keep-alive connections from before the signal are closed once no request is being served: a client that writes
 * its next request into a connection the server is closing sees the connection fail, and while other requests are
 * in progress such a request is still served instead. The drain is over when every connection from before the
 * signal has closed.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { InFlight } from '../in-flight';

export class HttpDrain {
  private readonly open = new Map<Socket, () => void>();
  /** The connections open when the drain began; undefined until then. */
  private before: Set<Socket> | undefined;
  /** Connections from before the drain that have not closed yet. */
  private readonly remaining = new InFlight();
  /** Requests being served (probes and scrapes aside): while there are some, idle connections may still be used. */
  private readonly requests = new InFlight();

  /** `secure`: count TLS connections once their handshake is done, as the requests see them. */
  constructor(private readonly server: Server, secure: boolean) {
    server.on(secure ? 'secureConnection' : 'connection', (socket: Socket) => {
      this.open.set(socket, () => undefined);
      socket.once('close', () => {
        this.open.get(socket)?.();
        this.open.delete(socket);
      });
    });
  }

  /** Counts a request from its arrival until its response closes. */
  track(response: { once(event: 'close', listener: () => void): unknown }): void {
    const finished = this.requests.start();
    response.once('close', () => {
      finished();
      if (this.before !== undefined && this.requests.count === 0) this.closeIdle();
    });
  }

  /** Requests being served now. */
  get inProgress(): number {
    return this.requests.count;
  }

  /**
   * Begins the drain. Connections the server accepts in the same turn of the event loop as the signal were opened
   * before it (the kernel had already accepted them), so the set is taken one turn later.
   */
  start(): Promise<void> {
    return new Promise((resolve) => setImmediate(() => {
      this.before = new Set(this.open.keys());
      for (const socket of this.before) this.open.set(socket, this.remaining.start());
      if (this.requests.count === 0) this.closeIdle();
      resolve();
    }));
  }

  /** True for a connection opened after the drain began, whose inference requests are refused. */
  isNewConnection(socket: Socket): boolean {
    return this.before !== undefined && !this.before.has(socket);
  }

  /** Resolves once every connection from before the drain has closed. */
  idle(): Promise<void> {
    return this.remaining.idle();
  }

  /** Closes the connections with no request in progress, not even one whose bytes have begun to arrive. */
  private closeIdle(): void {
    setImmediate(() => this.server.closeIdleConnections());
  }
}
