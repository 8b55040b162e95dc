/**
 * A loopback stand-in for Twilio's REST API: it answers `POST /2010-04-01/Accounts/{sid}/Messages.json` the
 * way Twilio does, checks HTTP Basic credentials, and keeps every message, so tests drive the real twilio
 * SDK (TWILIO_API_URL points it here) and read the SMS codes it sent.
 */
import { createServer, type IncomingMessage } from 'node:http';
import { randomBytes } from 'node:crypto';
import { freePort } from './ports.js';

export interface ReceivedSms {
  to: string;
  from: string | undefined;
  messagingServiceSid: string | undefined;
  body: string;
}

export const TWILIO_SID = `AC${'0123456789abcdef'.repeat(2)}`;
export const TWILIO_TOKEN = 'test-twilio-auth-token';
export const TWILIO_FROM = '+14155550000';

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startTwilioServer() {
  const messages: ReceivedSms[] = [];
  const expectedAuth = `Basic ${Buffer.from(`${TWILIO_SID}:${TWILIO_TOKEN}`).toString('base64')}`;
  const server = createServer((req, res) => {
    void (async () => {
      const body = new URLSearchParams(await readBody(req));
      const match = /^\/2010-04-01\/Accounts\/(AC[0-9a-f]{32})\/Messages\.json$/.exec(req.url ?? '');
      res.setHeader('content-type', 'application/json');
      if (req.headers.authorization !== expectedAuth) {
        res.statusCode = 401;
        res.end(JSON.stringify({ code: 20003, message: 'Authenticate', status: 401 }));
        return;
      }
      if (req.method !== 'POST' || !match) {
        res.statusCode = 404;
        res.end(JSON.stringify({ code: 20404, message: 'The requested resource was not found', status: 404 }));
        return;
      }
      const sms: ReceivedSms = { to: body.get('To') ?? '', from: body.get('From') ?? undefined, messagingServiceSid: body.get('MessagingServiceSid') ?? undefined, body: body.get('Body') ?? '' };
      messages.push(sms);
      res.statusCode = 201;
      res.end(
        JSON.stringify({
          sid: `SM${randomBytes(16).toString('hex')}`,
          account_sid: match[1],
          to: sms.to,
          from: sms.from ?? null,
          messaging_service_sid: sms.messagingServiceSid ?? null,
          body: sms.body,
          status: 'queued',
          num_segments: '1',
          direction: 'outbound-api',
          api_version: '2010-04-01',
          date_created: new Date().toUTCString(),
          uri: `/2010-04-01/Accounts/${match[1]}/Messages/SM.json`,
        }),
      );
    })();
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${port}`,
    /** Environment for startServer: the real SDK, pointed at this endpoint. */
    env: { TWILIO_ACCOUNT_SID: TWILIO_SID, TWILIO_AUTH_TOKEN: TWILIO_TOKEN, TWILIO_FROM, TWILIO_API_URL: `http://127.0.0.1:${port}` },
    messages,
    /** The six-digit code of the n-th message (1-based) once it has arrived. */
    async codeOf(count: number, timeoutMs = 10_000): Promise<string> {
      const deadline = Date.now() + timeoutMs;
      while (messages.length < count) {
        if (Date.now() > deadline) throw new Error(`expected ${count} SMS, got ${messages.length}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const code = /\b(\d{6})\b/.exec(messages[count - 1]!.body)?.[1];
      if (!code) throw new Error(`no code in SMS: ${messages[count - 1]!.body}`);
      return code;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
