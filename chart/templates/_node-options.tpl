{{/*
Node's heap limit follows the container's memory limit. Node would size V8's old generation from the memory it
sees (a fraction that lets bursts of route-table changes grow the heap close to the limit); the chart sets it
explicitly to `oldSpaceLimitPercent` of `resources.limits.memory`, which leaves the rest of the limit to what lives
outside V8's old generation (code, the young generation, buffers, the allocator): docs/operations.md#memory.
Rendered as the NODE_OPTIONS value, or nothing when there is no memory limit, the percentage is 0, or the user sets
NODE_OPTIONS in extraEnv (theirs is used as given). The uninstall Job derives its own from uninstall.resources.
*/}}

{{/* (dict "value" <a Kubernetes memory quantity: 512Mi, 1Gi, 1.5Gi, 600M, 536870912> "field" <its name>) in MiB, rounded down. */}}
{{- define "warren.memoryMiB" -}}
{{- $v := .value }}
{{- $q := toString $v }}
{{- if or (kindIs "float64" $v) (kindIs "int" $v) (kindIs "int64" $v) }}{{ $q = printf "%.0f" (float64 $v) }}{{ end }}
{{- $m := regexFind "^[0-9]+(\\.[0-9]+)?" $q }}
{{- $unit := trimPrefix $m $q }}
{{- $per := dict "" 0.00000095367431640625 "k" 0.00095367431640625 "Ki" 0.0009765625 "M" 0.95367431640625 "Mi" 1.0 "G" 953.67431640625 "Gi" 1024.0 "T" 953674.31640625 "Ti" 1048576.0 }}
{{- if or (not $m) (not (hasKey $per $unit)) }}
{{- fail (printf "%s %q is not a memory quantity this chart can read (use Ki, Mi, Gi, Ti, k, M, G, T or plain bytes)" .field $q) }}
{{- end }}
{{- mulf (float64 $m) (get $per $unit) | floor | int }}
{{- end }}

{{/* Called with (dict "root" $ "resources" <the container's resources> "field" <their values path>): each container follows its own limit. */}}
{{- define "warren.nodeOptions" -}}
{{- $limit := dig "limits" "memory" "" (.resources | default dict) }}
{{- $percent := int .root.Values.oldSpaceLimitPercent }}
{{- $userSet := false }}
{{- range .root.Values.extraEnv }}{{ if eq .name "NODE_OPTIONS" }}{{ $userSet = true }}{{ end }}{{ end }}
{{- if and $limit (gt $percent 0) (not $userSet) }}
{{- $field := printf "%s.limits.memory" .field }}
{{- $oldSpace := div (mul (include "warren.memoryMiB" (dict "value" $limit "field" $field) | int) $percent) 100 }}
{{- if lt $oldSpace 96 }}
{{- fail (printf "%s %s with oldSpaceLimitPercent %d leaves V8 an old generation of %d MiB; Warren needs at least 96 (raise the limit or the percentage)" $field (toString $limit) $percent $oldSpace) }}
{{- end }}
{{- printf "--max-old-space-size=%d" $oldSpace }}
{{- end }}
{{- end }}
