/**
 * Validates rendered Kubernetes objects against the API schemas compiled into npm `kubernetes-models` (and
 * `@kubernetes-models/prometheus-operator` for ServiceMonitor and PrometheusRule): types, required fields, enums.
 *
 * Those validators ignore fields they do not know, and a misspelled field (`readOnlyRootFileSystem`) is silently
 * dropped by the API server. So the object is handed to the validator through a proxy that records every field
 * the validator reads: the compiled schema reads each property it defines, so a field it never read is unknown.
 * An object the validator never looks into (a free-form field) is not judged.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { K8sObject } from './helm.js';

interface SchemaError {
  instancePath: string;
  keyword: string;
  params: Record<string, unknown>;
}
type Validate = ((data: unknown) => boolean) & { errors?: SchemaError[] | null };

const require = createRequire(import.meta.url);
/** The compiled schemas are not in the packages' exports: load them by path. */
const schemaDir = (pkg: string) => join(dirname(require.resolve(pkg)), '_schemas');
const coreSchemas = schemaDir('kubernetes-models');
const monitoringSchemas = schemaDir('@kubernetes-models/prometheus-operator');

/** apiVersion + kind -> the compiled schema module (IoK8sApi<Group><Version><Kind>). */
function validatorFor(object: K8sObject): Validate {
  const [group, version] = object.apiVersion.includes('/') ? object.apiVersion.split('/') : ['core', object.apiVersion];
  const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
  if (group === 'monitoring.coreos.com') {
    return (require(join(monitoringSchemas, `MonitoringCoreosCom${cap(version ?? '')}${object.kind}.js`)) as { validate: Validate }).validate;
  }
  const groupName = cap((group ?? '').split('.')[0] ?? '');
  const module = join(coreSchemas, `IoK8sApi${groupName}${cap(version ?? '')}${object.kind}.js`);
  try {
    return (require(module) as { validate: Validate }).validate;
  } catch {
    throw new Error(`no schema for ${object.apiVersion} ${object.kind} (looked for ${module})`);
  }
}

function recordReads(value: unknown, path: string, reads: Set<string>): unknown {
  if (value === null || typeof value !== 'object') return value;
  return new Proxy(value as object, {
    get(target, property, receiver) {
      const child = Reflect.get(target, property, receiver) as unknown;
      if (typeof property !== 'string') return child;
      reads.add(`${path}/${property}`);
      return recordReads(child, `${path}/${property}`, reads);
    },
  });
}

function unknownFields(value: unknown, path: string, reads: Set<string>, found: string[]): void {
  if (value === null || typeof value !== 'object') return;
  const keys = Object.keys(value);
  // A free-form object (a map, or a schema without properties): the validator looked at none of its fields.
  if (!Array.isArray(value) && ![...reads].some((r) => r.startsWith(`${path}/`))) return;
  for (const key of keys) {
    const childPath = `${path}/${key}`;
    if (!reads.has(childPath)) found.push(childPath);
    else unknownFields((value as Record<string, unknown>)[key], childPath, reads, found);
  }
}

/** Every problem with the object: schema violations and fields the schema does not define. */
export function validateObject(object: K8sObject): string[] {
  const validate = validatorFor(object);
  const reads = new Set<string>();
  const problems: string[] = [];
  if (!validate(recordReads(object, '', reads))) {
    for (const e of validate.errors ?? []) problems.push(`${e.instancePath || '/'}: ${e.keyword} ${JSON.stringify(e.params)}`);
  }
  const unknown: string[] = [];
  unknownFields(object, '', reads, unknown);
  for (const path of unknown) problems.push(`${path}: unknown field`);
  return problems;
}
