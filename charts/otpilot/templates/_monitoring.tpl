{{/*
One alert's `for` and labels, from metrics.prometheusRule.alerts.<name>:
dict "rule" <metrics.prometheusRule> "name" <alert> ["for" <override>] ["labels" <map>].
*/}}
{{- define "otpilot.alertMeta" -}}
{{- $a := index .rule.alerts .name -}}
{{- $for := .for | default $a.for -}}
{{- with $for }}
for: {{ . }}
{{- end }}
labels:
  severity: {{ $a.severity }}
  {{- with .labels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{/* The alert's section in docs/troubleshooting.md: dict "rule" "name". */}}
{{- define "otpilot.runbookUrl" -}}
{{- printf "%s#%s" .rule.runbookBaseUrl (lower .name) | quote -}}
{{- end }}

{{/* PromQL matchers for the operator's own series. */}}
{{- define "otpilot.operatorSelector" -}}
{{- .Values.metrics.prometheusRule.operatorSelector | default (printf "job=%q,namespace=%q" (include "otpilot.metricsServiceName" .) .Release.Namespace) -}}
{{- end }}
