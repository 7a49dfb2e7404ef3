import type { Socket } from 'node:net';

/** Resolves with `socket` once it is connected; rejects with its error if it fails first. */
export function connected(socket: Socket): Promise<Socket> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}
