{{/* The release's full name, at most 63 characters (a DNS label). */}}
{{- define "podlease.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* A name derived from the full name: fullname-<suffix>, at most 63 characters. */}}
{{- define "podlease.name" -}}
{{- $ctx := index . 0 -}}
{{- printf "%s-%s" (include "podlease.fullname" $ctx | trunc (int (sub 62 (len (index . 1))))) (index . 1) | trimSuffix "-" -}}
{{- end -}}

{{- define "podlease.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: podlease
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component: server, cni or redis. */}}
{{- define "podlease.selector" -}}
app.kubernetes.io/name: podlease
app.kubernetes.io/instance: {{ (index . 0).Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "podlease.serviceAccount" -}}
{{- default (include "podlease.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "podlease.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The Secret holding the serving certificate (tls.crt, tls.key). */}}
{{- define "podlease.tlsSecret" -}}
{{- if eq .Values.tls.mode "existingSecret" -}}
{{- .Values.tls.existingSecret -}}
{{- else -}}
{{- include "podlease.name" (list . "tls") -}}
{{- end -}}
{{- end -}}

{{/* The Service's DNS names, for the serving certificate. */}}
{{- define "podlease.dnsNames" -}}
{{- $svc := include "podlease.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) | toJson -}}
{{- end -}}

{{/* The embedded Redis's Service name. */}}
{{- define "podlease.redisName" -}}
{{- include "podlease.name" (list . "redis") -}}
{{- end -}}

{{/* The Secret and key holding REDIS_URL, or nothing when the URL is not a secret. */}}
{{- define "podlease.redisUrlSecret" -}}
{{- if .Values.redis.existingSecret -}}
{{- .Values.redis.existingSecret -}}
{{- else if or (eq .Values.redis.mode "embedded") .Values.redis.url -}}
{{- include "podlease.redisName" . -}}
{{- end -}}
{{- end -}}
