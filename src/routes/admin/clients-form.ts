/**
 * The client form of the admin pages: what its fields send (a textarea of redirect URIs, one per line;
 * grant-type checkboxes; space-separated scopes) turned into RFC 7591 metadata for the client service, and
 * back into the values the form shows again. The form checks nothing about the metadata itself: the client
 * service validates it exactly as it validates the API, the bootstrap file and the CLI, and its refusal
 * names the field, which this module maps onto the form's field.
 */
import { z } from 'zod';
import { AppError } from '../../errors/index.js';
import { AUTH_METHODS, GRANT_TYPES } from '../../services/clients.js';

/** The grant types a page offers, in plain words (the values are RFC 7591 §2 `grant_types`). */
export const GRANT_TYPE_LABELS: Record<(typeof GRANT_TYPES)[number], string> = {
  authorization_code: 'Authorization code (users sign in through a browser)',
  refresh_token: 'Refresh token (stay signed in)',
  client_credentials: 'Client credentials (a service calls APIs as itself)',
  'urn:ietf:params:oauth:grant-type:device_code': 'Device code (TVs and command-line tools)',
};

/** The client authentication methods a page offers (RFC 7591 §2 `token_endpoint_auth_method`). */
export const AUTH_METHOD_LABELS: Record<(typeof AUTH_METHODS)[number], string> = {
  client_secret_basic: 'Confidential: secret sent with HTTP Basic',
  client_secret_post: 'Confidential: secret sent in the form body',
  private_key_jwt: 'Confidential: signed JWT (needs a JWKS, set through the API)',
  none: 'Public: no secret (browser or mobile app, PKCE required)',
};

/** Methods the create form offers: a JWT client needs keys that a page does not take. */
export const FORM_AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'none'] as const;

/** One checkbox sends a string, several an array, none nothing. */
const manyValues = (max: number) => z.union([z.string().max(200), z.array(z.string().max(200)).max(max)]).optional();

export const clientFormSchema = z.object({
  csrf: z.string().max(100),
  client_id: z.string().max(200).optional(),
  client_name: z.string().max(400).optional(),
  token_endpoint_auth_method: z.string().max(50).optional(),
  redirect_uris: z.string().max(50 * 2100).optional(),
  grant_types: manyValues(10),
  scope: z.string().max(2000).optional(),
  // A checkbox is sent only when ticked: absent means the box was cleared.
  require_pkce: z.string().max(10).optional(),
});
export type ClientForm = z.infer<typeof clientFormSchema>;

/** The fields the form sends, as the client service takes them (RFC 7591 names). */
export interface ClientFormMetadata {
  client_name?: string | undefined;
  redirect_uris: string[];
  grant_types: string[];
  scope?: string | undefined;
  /** Only the opt-out is stated: PKCE is required unless a confidential client says otherwise. */
  require_pkce?: false | undefined;
}

export function metadataOfForm(form: ClientForm): ClientFormMetadata {
  const name = form.client_name?.trim();
  const scope = form.scope?.trim().split(/\s+/).filter(Boolean).join(' ');
  return {
    client_name: name ? name : undefined,
    redirect_uris: (form.redirect_uris ?? '')
      .split(/\r?\n/)
      .map((line) => line.trim())
      .filter(Boolean),
    grant_types: [form.grant_types ?? []].flat(),
    scope: scope ? scope : undefined,
    require_pkce: form.require_pkce === 'on' ? undefined : false,
  };
}

/** What the form shows: a client's current metadata, or what was just sent. */
export interface ClientFormValues {
  client_id: string;
  client_name: string;
  token_endpoint_auth_method: string;
  redirect_uris: string;
  grant_types: string[];
  scope: string;
  require_pkce: boolean;
}

export function formValuesOf(metadata: Record<string, unknown>, clientId = ''): ClientFormValues {
  const strings = (value: unknown) => (Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : []);
  return {
    client_id: clientId,
    client_name: typeof metadata.client_name === 'string' ? metadata.client_name : '',
    token_endpoint_auth_method: typeof metadata.token_endpoint_auth_method === 'string' ? metadata.token_endpoint_auth_method : 'client_secret_basic',
    redirect_uris: strings(metadata.redirect_uris).join('\n'),
    grant_types: strings(metadata.grant_types),
    scope: typeof metadata.scope === 'string' ? metadata.scope : '',
    require_pkce: metadata.require_pkce !== false,
  };
}

/** The checkboxes and choices of the form, with what is selected. */
export function formChoices(values: ClientFormValues) {
  return {
    grantTypes: GRANT_TYPES.map((value) => ({ value, label: GRANT_TYPE_LABELS[value], checked: values.grant_types.includes(value) })),
    authMethods: FORM_AUTH_METHODS.map((value) => ({ value, label: AUTH_METHOD_LABELS[value], selected: values.token_endpoint_auth_method === value })),
  };
}

/** Form fields an error can be shown on; an error about anything else is shown above the form. */
const FORM_FIELDS = new Set(['client_id', 'client_name', 'token_endpoint_auth_method', 'redirect_uris', 'grant_types', 'scope', 'require_pkce']);

export interface FieldError {
  field: string | undefined;
  message: string;
}

/**
 * The client service's refusal as a form error on its field: a schema issue carries the field in its path;
 * an AppError names it first (`redirect_uris[0]: must be ...`). Anything that is not a validation refusal is
 * thrown on to the error handler.
 */
export function fieldErrorOf(error: unknown): FieldError {
  if (error instanceof z.ZodError) {
    const issue = error.issues[0];
    const field = typeof issue?.path[0] === 'string' ? issue.path[0] : undefined;
    // A list field is a textarea with one entry per line: its n-th entry is said as "Line n".
    const where = typeof issue?.path[1] === 'number' ? `Line ${issue.path[1] + 1}: ` : field && !FORM_FIELDS.has(field) ? `${issue!.path.join('.')}: ` : '';
    return { field: field && FORM_FIELDS.has(field) ? field : undefined, message: `${where}${issue?.message ?? 'not valid'}` };
  }
  if (error instanceof AppError && (error.code === 'invalid_request' || error.code === 'conflict' || error.code === 'invalid_scope')) {
    const named = typeof error.extra.field === 'string' ? error.extra.field : /^([a-z_]+)(\[\d+\])?:/.exec(error.message)?.[1];
    return { field: named && FORM_FIELDS.has(named) ? named : error.code === 'conflict' ? 'client_id' : undefined, message: error.message };
  }
  throw error;
}
