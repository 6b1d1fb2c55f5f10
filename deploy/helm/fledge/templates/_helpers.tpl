{{/* Labels Helm adds to every object besides those of deploy/ (selectors and Pod
templates use deploy/'s labels only). */}}
{{- define "fledge.helmLabels" -}}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "fledge.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The Secret holding the APISIX Admin API key. */}}
{{- define "fledge.apisixSecret" -}}
{{ .Values.controller.apisix.existingSecret | default "fledge-apisix" }}
{{- end -}}

{{- define "fledge.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}
