/**
 * The Helm chart, rendered by the real helm v4 binary: it lints strictly, every object it renders for the
 * supported value sets is a valid Kubernetes object with no unknown field, the properties a production install
 * relies on hold on the rendered objects (probes, pod security, migrations before the pods, no secret in a
 * ConfigMap, a config change rolls the pods), and invalid values fail the render with the schema's message.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { parseDocument, isMap, isPair, isScalar, isSeq, type Node } from 'yaml';
import { repoRoot } from './dockerfile.js';
import { chartDir, find, helm, render, REQUIRED_VALUES, type K8sObject } from './helm.js';
import { validateObject } from './k8s-schema.js';

/* Loose views of the rendered objects, for assertions only (the schema check above types them for real). */
interface Container {
  name: string;
  command?: string[];
  envFrom?: Array<{ configMapRef?: { name: string }; secretRef?: { name: string } }>;
  ports?: Array<{ name: string; containerPort: number }>;
  startupProbe?: { httpGet: { path: string; port: string } };
  livenessProbe?: { httpGet: { path: string; port: string } };
  readinessProbe?: { httpGet: { path: string; port: string } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: Record<string, unknown>;
  volumeMounts?: Array<{ name: string; mountPath: string }>;
}
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  securityContext?: Record<string, unknown>;
  automountServiceAccountToken?: boolean;
  terminationGracePeriodSeconds?: number;
  volumes?: Array<{ name: string; emptyDir?: unknown; secret?: { secretName: string } }>;
  topologySpreadConstraints?: Array<{ whenUnsatisfiable: string; topologyKey: string }>;
  restartPolicy?: string;
}
const podSpec = (o: K8sObject): PodSpec => {
  const spec = o.spec as { template?: { spec: PodSpec }; jobTemplate?: { spec: { template: { spec: PodSpec } } } } & PodSpec;
  return spec.jobTemplate?.spec.template.spec ?? spec.template?.spec ?? spec;
};
const data = (o: K8sObject) => (o.data ?? {}) as Record<string, string>;
const hook = (o: K8sObject) => o.metadata.annotations?.['helm.sh/hook'];

const WEBHOOK_SECRET = `whsec_${'A'.repeat(44)}`;
const SECRET_VALUES = ['0123456789abcdef0123456789abcdef-test', 'db-password-test', 'redis-password-test', 'smtp-password-test', 'twilio-token-test', WEBHOOK_SECRET];
const WITH_ALL_SECRETS = [
  '--set', 'secret.redisUrl=redis://:redis-password-test@redis:6379',
  '--set', 'secret.smtpUrl=smtp://mailer:smtp-password-test@smtp:587',
  '--set', `secret.twilioAccountSid=AC${'0'.repeat(32)}`,
  '--set', 'secret.twilioAuthToken=twilio-token-test',
  '--set-string', 'secret.twilioFrom=+15550000000',
  '--set-string', `secret.alertWebhookSecret=${WEBHOOK_SECRET}`,
];

/** The value sets every render test covers (named for the messages). */
const VALUE_SETS: Record<string, string[]> = {
  defaults: [],
  'all secret variables': WITH_ALL_SECRETS,
  existingSecret: ['--set', 'existingSecret=keryu-prod'],
  'ingress with TLS': [
    '--set', 'ingress.enabled=true', '--set', 'ingress.className=nginx',
    '--set', 'ingress.hosts[0].host=auth.example.com', '--set', 'ingress.hosts[0].paths[0].path=/', '--set', 'ingress.hosts[0].paths[0].pathType=Prefix',
    '--set', 'ingress.tls[0].secretName=auth-tls', '--set', 'ingress.tls[0].hosts[0]=auth.example.com',
  ],
  'HPA on': ['--set', 'autoscaling.enabled=true'],
  'hooks off': ['--set', 'migrations.useHooks=false'],
  'ServiceMonitor and PrometheusRule on': ['--set', 'metrics.serviceMonitor.enabled=true', '--set', 'metrics.prometheusRule.enabled=true'],
  '3 replicas': ['--set', 'replicaCount=3'],
  'cleanup CronJob, bootstrap, NetworkPolicy, dashboard': [
    '--set', 'cleanup.cronJob.enabled=true', '--set', 'bootstrap.existingSecret=keryu-bootstrap', '--set', 'networkPolicy.enabled=true',
    '--set', 'metrics.grafanaDashboard.enabled=true', '--set', 'metrics.prometheusRule.enabled=true',
  ],
};

const rendered = new Map<string, K8sObject[]>();
for (const [name, args] of Object.entries(VALUE_SETS)) rendered.set(name, await render(args, { withTests: true }));
const set = (name: string) => rendered.get(name) ?? [];

t.test('Chart.yaml: apiVersion v2, appVersion is the package version', async (t) => {
  const chart = parseDocument(readFileSync(join(chartDir, 'Chart.yaml'), 'utf8')).toJS() as { apiVersion: string; appVersion: string; name: string };
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  t.equal(chart.apiVersion, 'v2');
  t.equal(chart.name, 'keryu-auth');
  t.equal(chart.appVersion, pkg.version);
});

t.test('helm lint --strict passes', async (t) => {
  const result = await helm(['lint', '--strict', chartDir, ...REQUIRED_VALUES]);
  t.equal(result.code, 0, `${result.stdout}${result.stderr}`);
  t.match(result.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
});

t.test('every rendered object is a valid Kubernetes object without unknown fields', async (t) => {
  for (const [name, objects] of rendered) {
    t.ok(objects.length > 5, `${name}: objects rendered`);
    for (const object of objects) t.same(validateObject(object), [], `${name}: ${object.kind}/${object.metadata.name}`);
  }
});

t.test('the unknown-field check catches a misspelled field', async (t) => {
  const deployment = structuredClone(find(set('defaults'), 'Deployment'));
  const container = podSpec(deployment).containers[0] as Container & Record<string, unknown>;
  (container.securityContext as Record<string, unknown>).readOnlyRootFileSystem = true;
  container.livenessProbe = { httpGet: { path: '/healthz', port: 'http' }, periodSecond: 10 } as Container['livenessProbe'];
  t.same(validateObject(deployment).sort(), [
    '/spec/template/spec/containers/0/livenessProbe/periodSecond: unknown field',
    '/spec/template/spec/containers/0/securityContext/readOnlyRootFileSystem: unknown field',
  ]);
  const monitor = structuredClone(find(set('ServiceMonitor and PrometheusRule on'), 'ServiceMonitor'));
  (monitor.spec as { endpoints: Array<Record<string, unknown>> }).endpoints[0]!.intervall = '30s';
  t.same(validateObject(monitor), ['/spec/endpoints/0/intervall: unknown field']);
  const replicas = structuredClone(find(set('defaults'), 'Deployment'));
  (replicas.spec as Record<string, unknown>).replicas = 'two';
  t.match(validateObject(replicas).join('\n'), /\/spec\/replicas: type/);
});

t.test('Deployment: replicas, zero-downtime rollout, probes on ports and paths that never move', async (t) => {
  const deployment = find(set('defaults'), 'Deployment');
  const spec = deployment.spec as { replicas?: number; strategy: { type: string; rollingUpdate: { maxUnavailable: number } } };
  t.equal(spec.replicas, 2);
  t.equal(spec.strategy.type, 'RollingUpdate');
  t.equal(spec.strategy.rollingUpdate.maxUnavailable, 0);
  t.equal((find(set('3 replicas'), 'Deployment').spec as { replicas: number }).replicas, 3);
  const [container] = podSpec(deployment).containers;
  if (!container) throw new Error('no container');
  t.same(container.ports, [{ name: 'http', containerPort: 3000, protocol: 'TCP' }, { name: 'metrics', containerPort: 9464, protocol: 'TCP' }]);
  t.same(container.startupProbe?.httpGet, { path: '/healthz', port: 'http' }, 'startup: /healthz');
  t.same(container.livenessProbe?.httpGet, { path: '/healthz', port: 'http' }, 'liveness: /healthz (no database)');
  t.same(container.readinessProbe?.httpGet, { path: '/readyz', port: 'http' }, 'readiness: /readyz');
  t.ok(container.resources?.requests?.cpu && container.resources.requests.memory, 'requests');
  t.ok(container.resources?.limits?.memory, 'a memory limit');
  t.same(podSpec(deployment).topologySpreadConstraints?.map((c) => [c.topologyKey, c.whenUnsatisfiable]), [['kubernetes.io/hostname', 'ScheduleAnyway']], 'a soft spread across nodes');
  const config = data(find(set('defaults'), 'ConfigMap', 'keryu-auth'));
  t.equal(config.PORT, '3000', 'the HTTP port the probes use');
  t.equal(config.METRICS_PORT, '9464');
  t.ok((podSpec(deployment).terminationGracePeriodSeconds ?? 0) > Number(config.SHUTDOWN_DELAY) + 10, 'the grace period outlasts the drain');
});

t.test('pod security: non-root numeric user, read-only root, no privileges, /tmp writable, no API token', async (t) => {
  for (const [name, objects] of [['defaults', set('defaults')], ['cleanup', set('cleanup CronJob, bootstrap, NetworkPolicy, dashboard')]] as const) {
    for (const object of objects.filter((o) => ['Deployment', 'Job', 'CronJob', 'Pod'].includes(o.kind))) {
      const pod = podSpec(object);
      const label = `${name}: ${object.kind}/${object.metadata.name}`;
      t.match(pod.securityContext, { runAsNonRoot: true, runAsUser: 10001, seccompProfile: { type: 'RuntimeDefault' } }, `${label} pod`);
      t.equal(pod.automountServiceAccountToken, false, `${label} mounts no service account token`);
      t.ok(pod.volumes?.some((v) => v.name === 'tmp' && v.emptyDir), `${label} has an emptyDir for /tmp`);
      for (const container of [...pod.containers, ...(pod.initContainers ?? [])]) {
        t.match(
          container.securityContext,
          { runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } },
          `${label} container ${container.name}`,
        );
        t.ok(container.volumeMounts?.some((m) => m.name === 'tmp' && m.mountPath === '/tmp'), `${label} ${container.name} mounts /tmp`);
      }
    }
  }
});

t.test('configuration: the ConfigMap holds no secret, the Secret holds them, a change rolls the pods', async (t) => {
  for (const [name, objects] of rendered) {
    for (const map of objects.filter((o) => o.kind === 'ConfigMap')) {
      const text = JSON.stringify(map.data ?? {});
      for (const secret of SECRET_VALUES) t.notOk(text.includes(secret), `${name}: ${map.metadata.name} does not contain ${secret}`);
      t.notOk(/KERYU_SECRET|DATABASE_URL|REDIS_URL|SMTP_URL|TWILIO_/.test(Object.keys(data(map)).join(' ')), `${name}: ${map.metadata.name} has no secret variable`);
    }
  }
  const secret = data(find(set('all secret variables'), 'Secret', 'keryu-auth'));
  t.same(Object.keys(secret).sort(), ['ALERT_WEBHOOK_SECRET', 'DATABASE_URL', 'KERYU_SECRET', 'REDIS_URL', 'SMTP_URL', 'TWILIO_ACCOUNT_SID', 'TWILIO_AUTH_TOKEN', 'TWILIO_FROM']);
  t.equal(Buffer.from(secret.KERYU_SECRET ?? '', 'base64').toString(), '0123456789abcdef0123456789abcdef-test', 'KERYU_SECRET is the given value, never generated');

  const config = data(find(set('defaults'), 'ConfigMap', 'keryu-auth'));
  t.equal(config.ISSUER, 'https://auth.example.com/oidc');
  t.equal(config.MIGRATE_ON_START, 'false', 'pods never migrate: the Job does');
  t.notOk('CLEANUP_INTERVAL' in config, 'cleanup runs in the pods unless the CronJob is on');

  const checksum = (objects: K8sObject[]) => (find(objects, 'Deployment').spec as { template: { metadata: { annotations: Record<string, string> } } }).template.metadata.annotations['checksum/config'];
  t.match(checksum(set('defaults')), /^[0-9a-f]{64}$/);
  t.not(checksum(await render(['--set', 'logLevel=debug'])), checksum(set('defaults')), 'a config change changes the checksum');
  t.not(checksum(await render(['--set', 'secret.databaseUrl=postgres://other@db/keryu'])), checksum(set('defaults')), 'a secret change too');
  t.equal(checksum(await render([])), checksum(set('defaults')), 'the same values render the same checksum');
});

t.test('existingSecret: no Secret is rendered, every pod reads the named one', async (t) => {
  const objects = set('existingSecret');
  t.same(objects.filter((o) => o.kind === 'Secret'), [], 'no Secret');
  for (const object of objects.filter((o) => ['Deployment', 'Job'].includes(o.kind))) {
    for (const container of podSpec(object).containers) t.ok(container.envFrom?.some((e) => e.secretRef?.name === 'keryu-prod'), `${object.kind} ${container.name}`);
  }
  const withoutSecretValues = await helm(['template', 'keryu', chartDir, '--set', 'issuer=https://auth.example.com/oidc', '--set', 'existingSecret=keryu-prod']);
  t.equal(withoutSecretValues.code, 0, `secret values are not needed with existingSecret: ${withoutSecretValues.stderr}`);
});

t.test('migrations: a pre-install/pre-upgrade hook running keryu migrate, its config rendered before it', async (t) => {
  const objects = set('defaults');
  const job = find(objects, 'Job', '-migrate');
  t.equal(hook(job), 'pre-install,pre-upgrade');
  t.equal(job.metadata.annotations?.['helm.sh/hook-delete-policy'], 'before-hook-creation');
  const [container] = podSpec(job).containers;
  t.same(container?.command, ['keryu', 'migrate']);
  t.equal(podSpec(job).restartPolicy, 'Never');
  // A pre-install hook runs before the release's ConfigMap and Secret exist: it reads hook copies made first.
  const weight = (o: K8sObject) => Number(o.metadata.annotations?.['helm.sh/hook-weight'] ?? 0);
  for (const source of container?.envFrom ?? []) {
    const name = source.configMapRef?.name ?? source.secretRef?.name;
    const object = objects.find((o) => o.metadata.name === name && o.kind === (source.configMapRef ? 'ConfigMap' : 'Secret'));
    t.ok(object && hook(object) === 'pre-install,pre-upgrade' && weight(object) < weight(job), `${name} is a hook created before the Job`);
  }
  t.same(data(find(objects, 'ConfigMap', '-migrations')), data(find(objects, 'ConfigMap', 'keryu-auth')), 'the Job sees the same configuration as the pods');
});

t.test('hooks off (Argo CD, Flux): a plain Job reading the release configuration, named after image and config', async (t) => {
  const objects = set('hooks off');
  t.same(objects.filter((o) => hook(o) && hook(o) !== 'test').map((o) => o.metadata.name), [], 'no hooks but the helm test');
  const job = find(objects, 'Job');
  t.match(job.metadata.name, /^keryu-keryu-auth-migrate-[0-9a-f]{8}$/);
  t.same(podSpec(job).containers[0]?.command, ['keryu', 'migrate']);
  t.same(podSpec(job).containers[0]?.envFrom, [{ configMapRef: { name: 'keryu-keryu-auth' } }, { secretRef: { name: 'keryu-keryu-auth' } }]);
  const other = find(await render(['--set', 'migrations.useHooks=false', '--set', 'image.tag=0.2.0']), 'Job');
  t.not(other.metadata.name, job.metadata.name, 'a new image gets a new Job (a Job spec cannot be changed)');
});

t.test('bootstrap: the same Job applies the file after migrating; cleanup CronJob; NetworkPolicy; dashboard', async (t) => {
  const objects = set('cleanup CronJob, bootstrap, NetworkPolicy, dashboard');
  const job = podSpec(find(objects, 'Job', '-migrate'));
  t.same(job.initContainers?.map((c) => c.command), [['keryu', 'migrate']], 'migrate first');
  t.same(job.containers.map((c) => c.command), [['keryu', 'bootstrap', '/etc/keryu/bootstrap/bootstrap.yaml']], 'then bootstrap');
  t.ok(job.volumes?.some((v) => v.secret?.secretName === 'keryu-bootstrap'), 'from the named Secret');

  const cron = find(objects, 'CronJob');
  t.equal((cron.spec as { concurrencyPolicy: string }).concurrencyPolicy, 'Forbid');
  t.same(podSpec(cron).containers[0]?.command, ['keryu', 'cleanup']);
  t.equal(data(find(objects, 'ConfigMap', 'keryu-auth')).CLEANUP_INTERVAL, '0', 'the pods stop cleaning up themselves');
  t.match(JSON.stringify(find(objects, 'PrometheusRule').spec), /kube_cronjob_status_last_successful_time\{[^}]*cronjob=\\"keryu-keryu-auth-cleanup\\"/, 'staleness comes from the CronJob then');

  const policy = find(objects, 'NetworkPolicy').spec as { ingress: Array<{ ports: Array<{ port: string }> }> };
  t.same(policy.ingress.map((r) => r.ports.map((p) => p.port)), [['http'], ['metrics']]);
  const dashboard = JSON.parse(data(find(objects, 'ConfigMap', '-dashboard'))['keryu-auth.json'] ?? '{}') as { title: string; panels: unknown[] };
  t.equal(dashboard.title, 'keryu-auth');
  t.ok(dashboard.panels.length > 5);
});

t.test('services, ingress, PDB, HPA', async (t) => {
  const objects = set('defaults');
  const service = find(objects, 'Service', 'keryu-auth').spec as { ports: Array<{ name: string; targetPort: string }> };
  t.same(service.ports.map((p) => p.targetPort), ['http'], 'the main Service carries HTTP only');
  t.same((find(objects, 'Service', '-metrics').spec as { ports: Array<{ targetPort: string }> }).ports.map((p) => p.targetPort), ['metrics']);
  t.equal((find(objects, 'PodDisruptionBudget').spec as { maxUnavailable: number }).maxUnavailable, 1);
  t.same((await render(['--set', 'replicaCount=1'])).filter((o) => o.kind === 'PodDisruptionBudget'), [], 'no PDB for a single pod');
  t.same(objects.filter((o) => ['Ingress', 'HorizontalPodAutoscaler', 'ServiceMonitor', 'PrometheusRule', 'NetworkPolicy', 'CronJob'].includes(o.kind)), [], 'optional objects are off by default');

  const ingress = find(set('ingress with TLS'), 'Ingress').spec as {
    ingressClassName: string;
    tls: Array<{ secretName: string; hosts: string[] }>;
    rules: Array<{ host: string; http: { paths: Array<{ backend: { service: { name: string; port: { name: string } } } }> } }>;
  };
  t.equal(ingress.ingressClassName, 'nginx');
  t.same(ingress.tls, [{ secretName: 'auth-tls', hosts: ['auth.example.com'] }]);
  t.same(ingress.rules[0]?.http.paths[0]?.backend.service, { name: 'keryu-keryu-auth', port: { name: 'http' } }, 'the ingress reaches HTTP, never metrics');

  const hpa = set('HPA on');
  t.equal((find(hpa, 'HorizontalPodAutoscaler').spec as { minReplicas: number }).minReplicas, 2);
  t.notOk('replicas' in (find(hpa, 'Deployment').spec as object), 'the HPA owns the replica count');
});

t.test('ServiceMonitor and PrometheusRule: rendered from values, on the metric names keryu exports', async (t) => {
  const objects = set('ServiceMonitor and PrometheusRule on');
  const monitor = find(objects, 'ServiceMonitor').spec as { selector: { matchLabels: Record<string, string> }; endpoints: Array<{ port: string; path: string }> };
  t.same(monitor.endpoints.map((e) => [e.port, e.path]), [['metrics', '/metrics']]);
  const metricsService = find(objects, 'Service', '-metrics');
  for (const [k, v] of Object.entries(monitor.selector.matchLabels)) t.equal(metricsService.metadata.labels?.[k], v, `selects the metrics Service by ${k}`);
  const rules = (find(objects, 'PrometheusRule').spec as { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> }).groups.flatMap((g) => g.rules);
  const expr = (alert: string) => rules.find((r) => r.alert === alert)?.expr ?? '';
  t.match(expr('KeryuAuthServerErrors'), /http_request_duration_seconds_count\{[^}]*status_code=~"5\.\."/);
  t.match(expr('KeryuAuthLoginFailures'), /keryu_login_attempts_total\{[^}]*result="failure"/);
  t.match(expr('KeryuAuthCleanupStale'), /keryu_job_last_success_timestamp_seconds\{[^}]*exported_job="cleanup"/);
  t.match(expr('KeryuAuthSigningKeyTooOld'), /keryu_signing_key_age_seconds\{[^}]*\}\) > 7776000/, '90 days by default');
  for (const rule of rules) t.match(rule.expr, /namespace="auth", job="keryu-keryu-auth-metrics"/, `${rule.alert} selects this release only`);
});

t.test('helm test: a pod fetches discovery through the Service and checks the issuer', async (t) => {
  const pod = find(set('defaults'), 'Pod', '-test-discovery');
  t.equal(hook(pod), 'test');
  const [container] = podSpec(pod).containers as Array<Container & { env: Array<{ name: string; value: string }> }>;
  const env = Object.fromEntries(container?.env.map((e) => [e.name, e.value]) ?? []);
  t.equal(env.DISCOVERY_URL, 'http://keryu-keryu-auth:80/oidc/.well-known/openid-configuration');
  t.equal(env.EXPECTED_ISSUER, 'https://auth.example.com/oidc');
  t.equal(container?.command?.[0], 'node');
});

t.test('NOTES.txt renders the issuer and the next steps', async (t) => {
  const result = await helm(['install', 'keryu', chartDir, '--dry-run=client', '--namespace', 'auth', ...REQUIRED_VALUES]);
  t.equal(result.code, 0, result.stderr);
  const notes = result.stdout.slice(result.stdout.indexOf('NOTES:'));
  t.match(notes, 'Discovery: https://auth.example.com/oidc/.well-known/openid-configuration');
  t.match(notes, 'kubectl -n auth rollout status deployment/keryu-keryu-auth');
  t.match(notes, 'helm test keryu -n auth');
});

t.test('invalid values fail the render with the schema message', async (t) => {
  const base = ['template', 'keryu', chartDir];
  const secrets = REQUIRED_VALUES.slice(2);
  const cases: Array<[string, string[], RegExp]> = [
    ['no issuer', secrets, /missing property 'issuer'/],
    ['replicaCount "two"', [...REQUIRED_VALUES, '--set', 'replicaCount=two'], /at '\/replicaCount': got string, want integer/],
    ['an unknown top-level key', [...REQUIRED_VALUES, '--set', 'replicas=3'], /additional properties 'replicas' not allowed/],
    ['a misspelled nested key', [...REQUIRED_VALUES, '--set', 'ingress.enable=true'], /at '\/ingress': additional properties 'enable' not allowed/],
    ['an issuer that is not a URL', ['--set', 'issuer=auth.example.com', ...secrets], /at '\/issuer'.*does not match pattern/],
    ['a short KERYU_SECRET', [...REQUIRED_VALUES, '--set', 'secret.keryuSecret=short'], /at '\/secret\/keryuSecret'/],
    ['a secret variable in config', [...REQUIRED_VALUES, '--set', 'config.DATABASE_URL=postgres://x@db/k'], /invalid propertyName 'DATABASE_URL'/],
    ['no KERYU_SECRET and no existingSecret', ['--set', 'issuer=https://auth.example.com/oidc', '--set', 'secret.databaseUrl=postgres://x@db/k'], /secret\.keryuSecret is required.*never generates it/],
    ['two bootstrap sources', [...REQUIRED_VALUES, '--set', 'bootstrap.existingSecret=a', '--set', 'bootstrap.existingConfigMap=b'], /bootstrap: set existingSecret or existingConfigMap, not both/],
    ['a bootstrap file without the migrations Job', [...REQUIRED_VALUES, '--set', 'bootstrap.existingSecret=a', '--set', 'migrations.enabled=false'], /applied by the migrations Job/],
    ['a grace period shorter than the drain', [...REQUIRED_VALUES, '--set', 'terminationGracePeriodSeconds=10'], /terminationGracePeriodSeconds \(10\) must exceed shutdownDelay/],
  ];
  for (const [name, args, message] of cases) {
    const result = await helm([...base, ...args]);
    t.not(result.code, 0, `${name} fails`);
    t.match(result.stderr, message, `${name}: ${result.stderr.trim().split('\n').slice(0, 3).join(' ')}`);
  }
});

t.test('values.yaml documents every value and matches the schema', async (t) => {
  const doc = parseDocument(readFileSync(join(chartDir, 'values.yaml'), 'utf8'));
  const undocumented: string[] = [];
  // A value is documented by a comment right above it or above a section that holds it.
  const walk = (node: Node | null | undefined, path: string, documented: boolean) => {
    if (!isMap(node)) return;
    node.items.forEach((pair, index) => {
      if (!isPair(pair) || !isScalar(pair.key)) return;
      const key = `${path}${String(pair.key.value)}`;
      const comment = Boolean(pair.key.commentBefore) || (index === 0 && Boolean(node.commentBefore));
      if (isMap(pair.value) && pair.value.items.length > 0 && !pair.value.flow) walk(pair.value as Node, `${key}.`, documented || comment);
      else if (!documented && !comment && !(isSeq(pair.value) && pair.value.items.length > 0 && pair.value.commentBefore)) undocumented.push(key);
    });
  };
  walk(doc.contents as Node, '', false);
  t.same(undocumented, [], 'every value has a comment');
  const schema = JSON.parse(readFileSync(join(chartDir, 'values.schema.json'), 'utf8')) as { $schema: string; additionalProperties: boolean; properties: Record<string, unknown> };
  t.equal(schema.$schema, 'http://json-schema.org/draft-07/schema#');
  t.equal(schema.additionalProperties, false);
  t.notMatch(readFileSync(join(chartDir, 'values.schema.json'), 'utf8'), /"\$ref":\s*"(?!#)/, 'no remote $ref: installs work air-gapped');
  const values = doc.toJS() as Record<string, unknown>;
  t.same(Object.keys(values).filter((k) => !(k in schema.properties)), [], 'every value is in the schema');
  const readme = readFileSync(join(chartDir, 'README.md'), 'utf8');
  const leaves = (o: unknown, prefix: string): string[] =>
    o && typeof o === 'object' && !Array.isArray(o) && Object.keys(o).length > 0 && !/(labels|annotations|Selector|resources|affinity|config|requests|limits)$/i.test(prefix)
      ? Object.entries(o).flatMap(([k, v]) => leaves(v, prefix ? `${prefix}.${k}` : k))
      : [prefix];
  for (const key of ['issuer', ...leaves(values, '')]) t.match(readme, `| \`${key}\``, `README documents ${key}`);
});
