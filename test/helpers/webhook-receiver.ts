/**
 * A real webhook receiver on loopback that verifies every request with the `standardwebhooks` package (an
 * implementation this project did not write), keeps what it accepted, and can be made to fail: `down`
 * (the port refuses connections), `error` (answers 500), `up`.
 */
import { createServer, type Server } from 'node:http';
import { Webhook } from 'standardwebhooks';
import { freePort } from './ports.js';

export interface ReceivedWebhook {
  id: string;
  body: Record<string, unknown>;
  raw: string;
}

export async function startWebhookReceiver(secret: string) {
  const verifier = new Webhook(secret);
  const received: ReceivedWebhook[] = [];
  const rejected: string[] = [];
  let mode: 'up' | 'error' = 'up';
  let server: Server | undefined;
  const port = await freePort();

  const listen = () =>
    new Promise<void>((resolve) => {
      server = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const raw = Buffer.concat(chunks).toString('utf8');
          if (mode === 'error') {
            res.writeHead(500).end();
            return;
          }
          try {
            const headers = { 'webhook-id': String(req.headers['webhook-id']), 'webhook-timestamp': String(req.headers['webhook-timestamp']), 'webhook-signature': String(req.headers['webhook-signature']) };
            const body = verifier.verify(raw, headers) as Record<string, unknown>;
            received.push({ id: headers['webhook-id'], body, raw });
            res.writeHead(204).end();
          } catch (err) {
            rejected.push(err instanceof Error ? err.message : String(err));
            res.writeHead(400).end();
          }
        });
      });
      server.listen(port, '127.0.0.1', resolve);
    });
  await listen();

  return {
    url: `http://127.0.0.1:${port}/hooks/keryu`,
    received,
    rejected,
    /** Answers 500 to everything until `up()`. */
    error() {
      mode = 'error';
    },
    async down() {
      const s = server;
      server = undefined;
      if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
      s?.closeAllConnections();
    },
    async up() {
      mode = 'up';
      if (!server) await listen();
    },
    close() {
      return this.down();
    },
  };
}
