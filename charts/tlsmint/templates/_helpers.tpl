{{/* The name prefix of every object: the release name, plus "-tlsmint" unless it says so already. */}}
{{- define "tlsmint.fullname" -}}
{{- if contains "tlsmint" .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-tlsmint" .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "tlsmint.labels" -}}
app.kubernetes.io/name: tlsmint
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "tlsmint.operatorSelector" -}}
app.kubernetes.io/name: tlsmint
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "tlsmint.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag | toString -}}
{{- if eq $tag "latest" -}}
{{- fail "image.tag must not be latest: pin the tag scripts/build-image prints" -}}
{{- end -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}

{{/* The gRPC issuance API as the node components reach it: the node's loopback in local
mode (the replicas listen there with the host network), the operator Service otherwise. */}}
{{- define "tlsmint.grpcEndpoint" -}}
{{- if .Values.local.enabled -}}
{{- printf "https://127.0.0.1:%v" .Values.api.grpcPort -}}
{{- else -}}
{{- printf "https://%s-operator.%s.svc:%v" (include "tlsmint.fullname" .) .Release.Namespace .Values.api.grpcPort -}}
{{- end -}}
{{- end -}}

{{- define "tlsmint.injectorSelector" -}}
app.kubernetes.io/name: tlsmint
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: injector
{{- end -}}

{{/* DNS names (and 127.0.0.1 in local mode) of the injector's serving certificate. */}}
{{- define "tlsmint.injectorServingNames" -}}
{{- $svc := printf "%s-injector" (include "tlsmint.fullname" .) -}}
{{- $ns := .Release.Namespace -}}
{{- $names := list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) -}}
{{- if .Values.local.enabled -}}
{{- $names = append $names "127.0.0.1" -}}
{{- end -}}
{{- join "," $names -}}
{{- end -}}
