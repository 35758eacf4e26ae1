{{/* The chart's name, or nameOverride. */}}
{{- define "kerno.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Objects' name: the release's name when it already contains the chart's. */}}
{{- define "kerno.fullname" -}}
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

{{- define "kerno.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kerno.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kerno.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "kerno.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: node-agent
app.kubernetes.io/part-of: kerno
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "kerno.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "kerno.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "kerno.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}


{{/* The containers' security context: uid 0, only the capabilities the probes need. */}}
{{- define "kerno.securityContext" -}}
securityContext:
  privileged: false
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  # uid 0 for /proc and the bpf() permission checks, but with only these
  # capabilities (docs/deploy.md, "Capabilities": each one's reason, measured).
  runAsUser: 0
  runAsNonRoot: false
  capabilities:
    drop: [ALL]
    add:
      - BPF              # load programs, create and read maps
      - PERFMON          # attach tracing programs (tp_btf, tracepoints)
      - SYS_PTRACE       # other processes' /proc/<pid>/ns/net, net/snmp, fd links
      - DAC_READ_SEARCH  # other users' /proc/<pid>/fd (descriptor counts)
{{- end -}}

{{/* The host's files, read-only, where the agent and the preflight read them. */}}
{{- define "kerno.hostMounts" -}}
{{- $root := .Values.hostRoot -}}
# The host's processes: comm, cgroup, fds, limits, every network namespace's
# TCP counters; meminfo, PSI and vmstat.
- name: host-proc
  mountPath: {{ printf "%s/proc" $root }}
  readOnly: true
# The host's cgroup tree: memory limits, working sets, pods' cgroups.
- name: host-cgroup
  mountPath: {{ printf "%s/sys/fs/cgroup" $root }}
  readOnly: true
# Tracepoint record formats (field offsets for the sched, disk, tcp and oom
# probes). At its own path: the probe loader reads /sys/kernel/tracing and
# cannot mount tracefs without CAP_SYS_ADMIN.
- name: tracefs
  mountPath: /sys/kernel/tracing
  readOnly: true
{{- if .Values.hostPaths.podLogs }}
# Pod and container names: /var/log/pods/<namespace>_<pod>_<uid>/<container>/
# and the /var/log/containers/<pod>_<namespace>_<container>-<id>.log links.
- name: pod-logs
  mountPath: {{ printf "%s/var/log/pods" $root }}
  readOnly: true
- name: container-logs
  mountPath: {{ printf "%s/var/log/containers" $root }}
  readOnly: true
{{- end }}
{{- range $i, $p := .Values.hostPaths.runtimeBundles }}
# The runtime's OCI bundles: config.json annotations name pod and container.
- name: {{ printf "runtime-bundles-%d" $i }}
  mountPath: {{ printf "%s%s" $root $p }}
  readOnly: true
{{- end }}
{{- end -}}

{{/* The Secret holding the cluster doctor's bearer token: the user's, or the chart's. */}}
{{- define "kerno.doctorSecret" -}}
{{- default (printf "%s-doctor-token" (include "kerno.fullname" .) | trunc 63 | trimSuffix "-") .Values.clusterDoctor.existingSecret -}}
{{- end -}}
