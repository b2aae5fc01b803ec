{{/*
Names and labels.
*/}}
{{- define "warren.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "warren.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "warren.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "warren.selectorLabels" -}}
app.kubernetes.io/name: {{ include "warren.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "warren.labels" -}}
helm.sh/chart: {{ include "warren.chart" . }}
{{ include "warren.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: controller
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "warren.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "warren.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "warren.image" -}}
{{- $repo := .Values.image.repository }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repo .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repo (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Credentials. Whatever their source (values turned into the chart's Secret, or an existing Secret), they are
mounted as files with fixed names under /etc/warren/secrets, and only the settings that name those files reach
the config file.
*/}}
{{- define "warren.secretsDir" -}}/etc/warren/secrets{{- end }}

{{- define "warren.chartSecretName" -}}
{{- printf "%s-credentials" (include "warren.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* True (non-empty) when the chart renders its own credentials Secret. */}}
{{- define "warren.ownsSecret" -}}
{{- $cf := .Values.cloudflare }}
{{- if and (not $cf.secretRef.name) (or $cf.tunnelToken $cf.apiToken $cf.tunnelCredentials) }}true{{ end }}
{{- end }}

{{- define "warren.credentialsSecretName" -}}
{{- default (include "warren.chartSecretName" .) .Values.cloudflare.secretRef.name }}
{{- end }}

{{/*
The credential files, as a YAML list of {key, path}: `key` in the Secret, `path` under the secrets folder.
*/}}
{{- define "warren.credentialItems" -}}
{{- $cf := .Values.cloudflare }}
{{- $items := list }}
{{- if $cf.secretRef.name }}
{{- with $cf.secretRef.tunnelTokenKey }}{{ $items = append $items (dict "key" . "path" "tunnel-token") }}{{ end }}
{{- with $cf.secretRef.apiTokenKey }}{{ $items = append $items (dict "key" . "path" "api-token") }}{{ end }}
{{- with $cf.secretRef.credentialsKey }}{{ $items = append $items (dict "key" . "path" "credentials.json") }}{{ end }}
{{- else }}
{{- if $cf.tunnelToken }}{{ $items = append $items (dict "key" "tunnel-token" "path" "tunnel-token") }}{{ end }}
{{- if $cf.apiToken }}{{ $items = append $items (dict "key" "api-token" "path" "api-token") }}{{ end }}
{{- if $cf.tunnelCredentials }}{{ $items = append $items (dict "key" "credentials.json" "path" "credentials.json") }}{{ end }}
{{- end }}
{{- toYaml $items }}
{{- end }}

{{/* Credential file paths present: a dict path -> true. */}}
{{- define "warren.credentialPaths" -}}
{{- $paths := dict }}
{{- range (include "warren.credentialItems" . | fromYamlArray) }}{{ $_ := set $paths .path true }}{{ end }}
{{- toYaml $paths }}
{{- end }}

{{/*
Checks that settings which only make sense together are given together. Helm's schema checks each value;
these are the cross-field rules, with messages that name the values to set.
*/}}
{{- define "warren.validate" -}}
{{- $v := .Values }}
{{- $cf := $v.cloudflare }}
{{- $paths := include "warren.credentialPaths" . | fromYaml }}
{{- $envNames := list }}
{{- range $v.extraEnv }}{{ $envNames = append $envNames .name }}{{ end }}
{{- if and $cf.secretRef.name (or $cf.tunnelToken $cf.apiToken $cf.tunnelCredentials) }}
{{- fail "cloudflare.secretRef.name is set together with cloudflare.tunnelToken, apiToken or tunnelCredentials: use one credential source" }}
{{- end }}
{{- if and $cf.secretRef.name (not (or $cf.secretRef.tunnelTokenKey $cf.secretRef.apiTokenKey $cf.secretRef.credentialsKey)) }}
{{- fail "cloudflare.secretRef.name is set but names no key: set cloudflare.secretRef.tunnelTokenKey, apiTokenKey and/or credentialsKey to the keys your Secret holds" }}
{{- end }}
{{- $hasApiToken := or (hasKey $paths "api-token") (has "CLOUDFLARE_API_TOKEN" $envNames) }}
{{- $tunnelOn := ne (dig "enabled" true ($v.tunnel | default dict)) false }}
{{- if $tunnelOn }}
{{- $tokenMode := or (hasKey $paths "tunnel-token") (hasKey $paths "credentials.json") (has "TUNNEL_TOKEN" $envNames) }}
{{- $managementMode := and $hasApiToken $cf.accountId $cf.tunnelName }}
{{- if not (or $tokenMode $managementMode) }}
{{- fail "the tunnel needs credentials: set cloudflare.tunnelToken (token mode), or cloudflare.apiToken with cloudflare.accountId and cloudflare.tunnelName (management mode), or cloudflare.secretRef with the matching keys; set tunnel.enabled=false to run without a tunnel" }}
{{- end }}
{{- end }}
{{- range $name := list "dns" "firewall" }}
{{- $plugin := get ($v.plugins | default dict) $name | default dict }}
{{- if and $plugin.enabled (not $hasApiToken) }}
{{- fail (printf "plugins.%s needs a Cloudflare API token: set cloudflare.apiToken or cloudflare.secretRef.apiTokenKey" $name) }}
{{- end }}
{{- end }}
{{- if and (gt (int $v.replicaCount) 1) (not $v.leaderElection.enabled) }}
{{- fail "replicaCount > 1 needs leaderElection.enabled=true (otherwise every replica writes status, Events and DNS)" }}
{{- end }}
{{- end }}

{{/*
The controller's config file. Keys the user left out are left out here too, so the controller's schema
supplies the defaults; chart-only keys are removed; file paths of mounted credentials are added.
*/}}
{{- define "warren.config" -}}
{{- $v := .Values }}
{{- $paths := include "warren.credentialPaths" . | fromYaml }}
{{- $dir := include "warren.secretsDir" . }}
{{- $cfg := dict "source" (dict "kind" "kubernetes") }}
{{- if hasKey $v "logLevel" }}{{ $_ := set $cfg "logLevel" $v.logLevel }}{{ end }}
{{- if hasKey $v "shutdownGracePeriod" }}{{ $_ := set $cfg "shutdownGracePeriod" $v.shutdownGracePeriod }}{{ end }}
{{- $_ := set $cfg "ingressClass" (dict "name" $v.ingressClass.name "controller" $v.ingressClass.controllerValue "watchWithoutClass" $v.watchIngressWithoutClass) }}
{{- $kube := deepCopy ($v.kubernetes | default dict) }}
{{- $election := deepCopy $v.leaderElection }}
{{- if not (hasKey $election "leaseNamespace") }}{{ $_ := set $election "leaseNamespace" .Release.Namespace }}{{ end }}
{{- $_ := set $kube "leaderElection" $election }}
{{- $_ := set $cfg "kubernetes" $kube }}
{{- $tunnel := deepCopy ($v.tunnel | default dict) }}
{{- if hasKey $paths "tunnel-token" }}{{ $_ := set $tunnel "tokenFile" (printf "%s/tunnel-token" $dir) }}{{ end }}
{{- if hasKey $paths "credentials.json" }}{{ $_ := set $tunnel "credentialsFile" (printf "%s/credentials.json" $dir) }}{{ end }}
{{- if $tunnel }}{{ $_ := set $cfg "tunnel" $tunnel }}{{ end }}
{{- $cloudflare := omit $v.cloudflare "tunnelToken" "apiToken" "tunnelCredentials" "secretRef" }}
{{- if hasKey $paths "api-token" }}{{ $_ := set $cloudflare "apiTokenFile" (printf "%s/api-token" $dir) }}{{ end }}
{{- if $cloudflare }}{{ $_ := set $cfg "cloudflare" $cloudflare }}{{ end }}
{{- $gateway := omit ($v.gateway | default dict) "installCRDs" }}
{{- $_ := set $gateway "enabled" (eq (include "warren.gatewayApi" .) "true") }}
{{- $_ := set $cfg "gateway" $gateway }}
{{- with $v.proxy }}{{ $_ := set $cfg "proxy" . }}{{ end }}
{{- $_ := set $cfg "server" (dict "listen" (printf "%s:%d" $v.metrics.address (int $v.metrics.port))) }}
{{- with $v.plugins }}{{ $_ := set $cfg "plugins" . }}{{ end }}
{{- with $v.extraPlugins }}{{ $_ := set $cfg "extraPlugins" . }}{{ end }}
{{- toYaml $cfg }}
{{- end }}

{{/*
"true" when the controller reads Secrets: an enabled plugin has an annotation naming one (the built-in tls
plugin), or custom plugins are installed (they may). Otherwise the controller does not watch Secrets at all.
*/}}
{{- define "warren.readsSecrets" -}}
{{- if or ((.Values.plugins).tls).enabled .Values.extraPlugins (include "warren.gatewayApi" .) }}true{{- end }}
{{- end }}

{{/*
"true" when the chart turns the Gateway API on (gateway.enabled, off unless set: it widens the rights): the controller
then reads the Gateway API kinds and Namespaces, writes their status, and reads listener certificate Secrets.
*/}}
{{- define "warren.gatewayApi" -}}
{{- if eq (toString ((.Values.gateway).enabled)) "true" }}true{{- end }}
{{- end }}

{{/*
The Gateway API rules: read the kinds (namespaced ones only with .namespaced, cluster-scoped ones only with
.cluster), write only their status subresources.
*/}}
{{- define "warren.gatewayRules" -}}
{{- if .cluster }}
- apiGroups: ["gateway.networking.k8s.io"]
  resources: {{ if .namespaced }}["gatewayclasses", "gateways", "httproutes", "grpcroutes", "referencegrants", "backendtlspolicies"]{{ else }}["gatewayclasses"]{{ end }}
  verbs: ["get", "list", "watch"]
- apiGroups: ["gateway.networking.k8s.io"]
  resources: {{ if .namespaced }}["gatewayclasses/status", "gateways/status", "httproutes/status", "grpcroutes/status", "backendtlspolicies/status"]{{ else }}["gatewayclasses/status"]{{ end }}
  verbs: ["update"]
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["get", "list", "watch"]
{{- if .namespaced }}
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch"]
{{- end }}
{{- else }}
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["gateways", "httproutes", "grpcroutes", "referencegrants", "backendtlspolicies"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["gateways/status", "httproutes/status", "grpcroutes/status", "backendtlspolicies/status"]
  verbs: ["update"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch"]
{{- end }}
{{- end }}

{{/*
The routing rules, for the ClusterRole (classes: true, includes IngressClasses) or a per-namespace Role.
*/}}
{{- define "warren.routingRules" -}}
- apiGroups: ["networking.k8s.io"]
  resources: {{ if .classes }}["ingresses", "ingressclasses"]{{ else }}["ingresses"]{{ end }}
  verbs: ["get", "list", "watch"]
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses"]
  verbs: ["patch", "update"]
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses/status"]
  verbs: ["update"]
- apiGroups: [""]
  resources: {{ if .secrets }}["services", "secrets"]{{ else }}["services"]{{ end }}
  verbs: ["get", "list", "watch"]
- apiGroups: ["discovery.k8s.io"]
  resources: ["endpointslices"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}
