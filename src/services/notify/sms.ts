/**
 * Outgoing SMS through the Twilio SDK when TWILIO_* is configured, otherwise a transport that writes each
 * message to the log (development). Messages carry one-time codes: the log transport replaces every code
 * with a placeholder, so a code never reaches a log file, unless LOG_MESSAGE_SECRETS asks for them
 * (development only; refused in production).
 */

export interface SmsMessage {
  /** E.164 number. */
  to: string;
  text: string;
}

export interface SmsSender {
  send(message: SmsMessage): Promise<void>;
}

export interface SmsLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface TwilioOptions {
  accountSid: string;
  authToken: string;
  /** An E.164 number or a messaging service SID (MG...). */
  from: string;
  /** Another base URL for the Twilio REST API (a test endpoint on loopback, a regional edge). */
  apiUrl?: string | undefined;
}

const CODE_PATTERN = /\b\d{6}\b/g;

export function createSmsSender(options: {
  twilio?: TwilioOptions | undefined;
  /** Show codes in the logged message (LOG_MESSAGE_SECRETS; refused in production). */
  showSecrets: boolean;
  /** Warn at start that messages only reach the log (production: a missing transport is a misconfiguration). */
  warnWithoutTransport: boolean;
  log: SmsLogger;
}): SmsSender {
  if (!options.twilio) {
    if (options.warnWithoutTransport) options.log.warn({}, 'TWILIO_* is not set: SMS messages are only logged, with codes redacted');
    return {
      async send(message) {
        const text = !options.showSecrets ? message.text.replace(CODE_PATTERN, '[code redacted]') : message.text;
        options.log.info({ sms: { to: message.to, text } }, 'sms (no Twilio configured)');
      },
    };
  }
  const settings = options.twilio;
  // The SDK is loaded only when Twilio is configured (it is about 25 MB of a replica's resident memory); the
  // import starts here, so the first message does not wait for it.
  const client = import('twilio').then(({ default: twilio }) => {
    const created = twilio(settings.accountSid, settings.authToken, { autoRetry: true, maxRetries: 2 });
    // The SDK builds every Messages URL from the Api domain's base URL.
    if (settings.apiUrl) created.api.baseUrl = settings.apiUrl;
    return created;
  });
  // A failed load surfaces on the first send; until then it is not an unhandled rejection.
  client.catch(() => {});
  const sender = settings.from.startsWith('MG') ? { messagingServiceSid: settings.from } : { from: settings.from };
  return {
    async send(message) {
      await (await client).messages.create({ to: message.to, body: message.text, ...sender });
    },
  };
}
