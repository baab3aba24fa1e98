{{/* Chart name, overridable. */}}
{{- define "otpilot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's objects. Cluster-scoped objects (ClusterRoles,
the MutatingWebhookConfiguration) use it too: install otpilot once per cluster.
*/}}
{{- define "otpilot.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "otpilot.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "otpilot.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "otpilot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "otpilot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "otpilot.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "otpilot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: otpilot
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "otpilot.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "otpilot.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
repository[:tag][@digest]; the tag defaults to the chart's appVersion. No
image is published: an unset repository fails the render with how to make one.
*/}}
{{- define "otpilot.image" -}}
{{- $repository := required (printf "%s.image.repository is not set: no otpilot images are published; build and push them with scripts/images.sh --push REGISTRY/PREFIX, then set operator.image.repository and sidecar.image.repository (docs/images.md)" .component) .image.repository -}}
{{- $tag := .image.tag | default .root.Chart.AppVersion -}}
{{- if .image.digest -}}
{{- printf "%s:%s@%s" $repository $tag .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository $tag -}}
{{- end -}}
{{- end }}

{{- define "otpilot.webhookServiceName" -}}
{{- printf "%s-webhook" (include "otpilot.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "otpilot.metricsServiceName" -}}
{{- printf "%s-metrics" (include "otpilot.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "otpilot.webhookSecretName" -}}
{{- printf "%s-webhook-tls" (include "otpilot.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "otpilot.webhookCertificateName" -}}
{{- printf "%s-webhook" (include "otpilot.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The injection settings the operator reads (otpilot_inject::InjectConfig, JSON). */}}
{{- define "otpilot.injectConfig" -}}
{{- $resources := dict "cpuRequest" (toString .Values.sidecar.resources.cpuRequest) "memoryRequest" (toString .Values.sidecar.resources.memoryRequest) "memoryLimit" (toString .Values.sidecar.resources.memoryLimit) -}}
{{- if .Values.sidecar.resources.cpuLimit }}{{- $_ := set $resources "cpuLimit" (toString .Values.sidecar.resources.cpuLimit) -}}{{- end -}}
{{- $config := dict "sidecarImage" (include "otpilot.image" (dict "image" .Values.sidecar.image "root" . "component" "sidecar")) "sidecarBinary" .Values.sidecar.binaryPath "allowImageOverride" .Values.webhook.allowSidecarImageOverride "whenNotReady" .Values.webhook.whenNotReady "resources" $resources -}}
{{- if .Values.sidecar.image.pullPolicy }}{{- $_ := set $config "imagePullPolicy" .Values.sidecar.image.pullPolicy -}}{{- end -}}
{{- with .Values.sidecar.imagePullSecrets }}{{- $_ := set $config "imagePullSecrets" . -}}{{- end -}}
{{- with .Values.egress.proxy }}{{- $_ := set $config "egressProxy" . -}}{{- end -}}
{{- with .Values.egress.noProxy }}{{- $_ := set $config "egressNoProxy" . -}}{{- end -}}
{{- toPrettyJson $config -}}
{{- end }}
