/**
 * Outgoing mail through nodemailer: SMTP when SMTP_URL is set, otherwise a transport that writes each
 * message to the log. Messages may carry secrets (a password reset link, a one-time code): the log transport
 * redacts every URL and six-digit code, so neither reaches a log file, unless LOG_MESSAGE_SECRETS asks for
 * them (development without a mail server; refused in production).
 */
import nodemailer, { type Transporter } from 'nodemailer';

export interface MailMessage {
  to: string;
  subject: string;
  text: string;
}

export interface Mailer {
  send(message: MailMessage): Promise<void>;
  close(): void;
}

export interface MailLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

const URL_PATTERN = /\bhttps?:\/\/\S+/g;
const CODE_PATTERN = /\b\d{6}\b/g;

export function createMailer(options: {
  smtpUrl?: string | undefined;
  from: string;
  /** Show links and codes in the logged message (LOG_MESSAGE_SECRETS; refused in production). */
  showSecrets: boolean;
  /** Warn at start that messages only reach the log (production: a missing transport is a misconfiguration). */
  warnWithoutTransport: boolean;
  log: MailLogger;
}): Mailer {
  if (!options.smtpUrl) {
    if (options.warnWithoutTransport) options.log.warn({}, 'SMTP_URL is not set: outgoing mail is only logged, with links and codes redacted');
    return {
      async send(message) {
        const text = !options.showSecrets ? message.text.replace(URL_PATTERN, '[link redacted]').replace(CODE_PATTERN, '[code redacted]') : message.text;
        options.log.info({ mail: { to: message.to, subject: message.subject, text } }, 'mail (no SMTP_URL configured)');
      },
      close() {},
    };
  }
  const transport: Transporter = nodemailer.createTransport(options.smtpUrl);
  return {
    async send(message) {
      await transport.sendMail({ from: options.from, to: message.to, subject: message.subject, text: message.text });
    },
    close: () => transport.close(),
  };
}
