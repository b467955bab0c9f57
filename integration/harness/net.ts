// Loopback addresses for the harness's servers, and addresses where no registry answers, for
// kiln's "unreachable registry" tests. Everything binds to 127.0.0.1 only.
import { createServer, type Server, type Socket } from 'node:net';

export const LOOPBACK = '127.0.0.1';

/**
 * A port that was free a moment ago: the kernel picks it for a throw-away listener, which is
 * closed so that another process (docker-registry) can bind it. Callers retry on a race.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, LOOPBACK, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('no port assigned'))));
    });
  });
}

/** `127.0.0.1:PORT` where nothing listens: connecting is refused. */
export async function unusedPort(): Promise<{ host: string; port: number }> {
  const port = await freePort();
  return { host: `${LOOPBACK}:${port}`, port };
}

export interface BlackHole {
  host: string;
  url: string;
  /** Number of TCP connections accepted so far. */
  connections(): number;
  stop(): Promise<void>;
}

/**
 * A listener that accepts connections and never answers, so a client hangs until its own
 * timeout: the other kind of unreachable registry (a dropped route rather than a refusal).
 */
export function startBlackHole(): Promise<BlackHole> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server: Server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    socket.resume();
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, LOOPBACK, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      const host = `${LOOPBACK}:${port}`;
      resolve({
        host,
        url: `http://${host}`,
        connections: () => accepted,
        stop: () =>
          new Promise<void>((done) => {
            for (const socket of sockets) socket.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}
