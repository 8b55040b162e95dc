{{/* Chart name, at most 63 characters (a DNS label). */}}
{{- define "keryu-auth.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Prefix of every resource name: the release name, plus the chart name unless the release already holds it. */}}
{{- define "keryu-auth.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "keryu-auth.selectorLabels" -}}
app.kubernetes.io/name: {{ include "keryu-auth.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "keryu-auth.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "keryu-auth.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "keryu-auth.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "keryu-auth.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "keryu-auth.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The issuer, required: every token and every redirect names it, so the chart never guesses it. */}}
{{- define "keryu-auth.issuer" -}}
{{- required "issuer is required: the public URL clients reach, e.g. --set issuer=https://auth.example.com/oidc" .Values.issuer | trimSuffix "/" -}}
{{- end -}}

{{/* Name of the Secret the pods read their secret variables from. */}}
{{- define "keryu-auth.secretName" -}}
{{- default (include "keryu-auth.fullname" .) .Values.existingSecret -}}
{{- end -}}

{{/* Non-secret variables of the server (a ConfigMap). The cleanup CronJob, when on, replaces the in-process timer. */}}
{{- define "keryu-auth.configData" -}}
ISSUER: {{ include "keryu-auth.issuer" . | quote }}
PORT: "3000"
HOST: "0.0.0.0"
METRICS_PORT: {{ ternary .Values.metrics.port 0 .Values.metrics.enabled | toString | quote }}
TRUST_PROXY: {{ .Values.trustProxy | quote }}
LOG_LEVEL: {{ .Values.logLevel | quote }}
SHUTDOWN_DELAY: {{ .Values.shutdownDelay | toString | quote }}
MIGRATE_ON_START: {{ ternary "false" "true" .Values.migrations.enabled | quote }}
{{- if .Values.cleanup.cronJob.enabled }}
CLEANUP_INTERVAL: "0"
{{- end }}
{{- range $name, $value := .Values.config }}
{{ $name }}: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{/* Secret variables (a Secret), when the chart creates it. KERYU_SECRET is required, never generated. */}}
{{- define "keryu-auth.secretData" -}}
{{- $s := .Values.secret -}}
KERYU_SECRET: {{ required "secret.keryuSecret is required (at least 32 random characters; the chart never generates it, so upgrades keep sessions and keys), or set existingSecret" $s.keryuSecret | b64enc | quote }}
DATABASE_URL: {{ required "secret.databaseUrl is required (postgres://...), or set existingSecret" $s.databaseUrl | b64enc | quote }}
{{- with $s.redisUrl }}
REDIS_URL: {{ . | b64enc | quote }}
{{- end }}
{{- with $s.smtpUrl }}
SMTP_URL: {{ . | b64enc | quote }}
{{- end }}
{{- with $s.twilioAccountSid }}
TWILIO_ACCOUNT_SID: {{ . | b64enc | quote }}
{{- end }}
{{- with $s.twilioAuthToken }}
TWILIO_AUTH_TOKEN: {{ . | b64enc | quote }}
{{- end }}
{{- with $s.twilioFrom }}
TWILIO_FROM: {{ . | b64enc | quote }}
{{- end }}
{{- with $s.alertWebhookSecret }}
ALERT_WEBHOOK_SECRET: {{ . | b64enc | quote }}
{{- end }}
{{- end -}}

{{/* Pod-level security shared by the server, the jobs and the test pod. */}}
{{- define "keryu-auth.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.runAsUser }}
runAsGroup: {{ .Values.runAsUser }}
fsGroup: {{ .Values.runAsUser }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "keryu-auth.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.runAsUser }}
runAsGroup: {{ .Values.runAsUser }}
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Where the read-only root filesystem lets the process write. */}}
{{- define "keryu-auth.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
{{- end -}}

{{- define "keryu-auth.tmpMount" -}}
- name: tmp
  mountPath: /tmp
{{- end -}}

{{/* envFrom of the server and of jobs that run after install (plain Job, CronJob). */}}
{{- define "keryu-auth.envFrom" -}}
- configMapRef:
    name: {{ include "keryu-auth.fullname" . }}
- secretRef:
    name: {{ include "keryu-auth.secretName" . }}
{{- end -}}

{{/*
A container running one `keryu` CLI command, for the migrations Job and the cleanup CronJob.
Takes (dict "root" $ "name" "migrate" "args" (list "migrate") "envFrom" YAML "resources" MAP "extraMounts" YAML).
*/}}
{{- define "keryu-auth.cliContainer" -}}
- name: {{ .name }}
  image: {{ include "keryu-auth.image" .root }}
  imagePullPolicy: {{ .root.Values.image.pullPolicy }}
  command:
    - keryu
    {{- range .args }}
    - {{ . | quote }}
    {{- end }}
  envFrom:
    {{- .envFrom | nindent 4 }}
  resources:
    {{- toYaml .resources | nindent 4 }}
  securityContext:
    {{- include "keryu-auth.containerSecurityContext" .root | nindent 4 }}
  volumeMounts:
    {{- include "keryu-auth.tmpMount" .root | nindent 4 }}
    {{- with .extraMounts }}
    {{- . | nindent 4 }}
    {{- end }}
{{- end -}}
