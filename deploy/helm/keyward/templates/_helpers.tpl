{{/*
keyward.name is the chart name (nameOverride wins).
*/}}
{{- define "keyward.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
keyward.fullname prefixes every object: the release name (as the Vault
chart's objects are named after a release called "vault"), or
fullnameOverride.
*/}}
{{- define "keyward.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "keyward.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
keyward.labels are the common labels of every object.
*/}}
{{- define "keyward.labels" -}}
helm.sh/chart: {{ include "keyward.chart" . }}
app.kubernetes.io/name: {{ include "keyward.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/*
keyward.selectorLabels <component> selects one component's pods.
*/}}
{{- define "keyward.selectorLabels" -}}
app.kubernetes.io/name: {{ include "keyward.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "keyward.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "keyward.server.serviceAccountName" -}}
{{- if .Values.server.serviceAccount.create -}}
{{- default (include "keyward.fullname" .) .Values.server.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.server.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "keyward.controller.fullname" -}}
{{- printf "%s-identity-controller" (include "keyward.fullname" .) -}}
{{- end -}}

{{- define "keyward.agent.fullname" -}}
{{- printf "%s-identity-agent" (include "keyward.fullname" .) -}}
{{- end -}}

{{/*
keyward.env renders a map as container env entries, sorted by name.
*/}}
{{- define "keyward.env" -}}
{{- range $k := keys . | sortAlpha }}
- name: {{ $k }}
  value: {{ get $ $k | toString | quote }}
{{- end }}
{{- end -}}

{{/*
keyward.imagePullSecrets renders the pod's imagePullSecrets, if any.
*/}}
{{- define "keyward.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
keyward.stringMap renders a map with every value quoted as a string, for
labels and annotations (YAML would read y, on or 1 as other types).
*/}}
{{- define "keyward.stringMap" -}}
{{- range $k := keys . | sortAlpha }}
{{ $k }}: {{ get $ $k | toString | quote }}
{{- end }}
{{- end -}}
