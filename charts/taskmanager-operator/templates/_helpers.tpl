{{/* Chart name, overridable. */}}
{{- define "taskmanager-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* "<release>-<chart>", or the release name alone when it already contains the chart name. */}}
{{- define "taskmanager-operator.fullname" -}}
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

{{/* Cluster-scoped names carry the namespace: two releases of one name may live in two namespaces. */}}
{{- define "taskmanager-operator.clusterName" -}}
{{- printf "%s-%s" .Release.Namespace (include "taskmanager-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "taskmanager-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "taskmanager-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "taskmanager-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "taskmanager-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "taskmanager-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "taskmanager-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: taskmanager-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "taskmanager-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The operator's own rights in the namespaces it watches, derived from the code:
- children: every kind in the registry taskmanager_operator.children.CHILDREN, with its
  CHILD_VERBS (that comment says why each verb); tests/chart/test_children_rbac.py fails when
  these rules and the registry differ;
- taskmanagers: kopf lists and watches them, the reconcile reads one (get), patches its status,
  and its finalizers (patch: the one that holds a deletion until the final backup finished);
- events: the reconcile and kopf post core/v1 Events (create);
- pods: the reconcile lists a stuck rollout's or migration's pods, to say why they do not run,
  and a backup Job's pod, to read its result (the container's termination message);
- taskmanagerbackups: the scheduler creates them, retention deletes them, kopf adds and removes
  the finalizer that deletes a backup's data (patch); their status is the operator's;
- taskmanagerrestores: the operator follows them step by step; their status is the operator's;
- persistentvolumeclaims: the backups' claim, applied by the first backup; it has no owner, so
  the backups outlive their TaskManager, and the operator never deletes it.
*/}}
{{- define "taskmanager-operator.operatorRules" -}}
- apiGroups: [""]
  resources: [configmaps, secrets, serviceaccounts, services]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [apps]
  resources: [deployments, statefulsets]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [networking.k8s.io]
  resources: [ingresses, networkpolicies]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [monitoring.coreos.com]
  resources: [podmonitors, prometheusrules, servicemonitors]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [grafana.integreatly.org]
  resources: [grafanadashboards]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [taskmanager.dev]
  resources: [taskmanagers]
  verbs: [get, list, watch, patch]
- apiGroups: [taskmanager.dev]
  resources: [taskmanagers/status]
  verbs: [patch]
- apiGroups: [taskmanager.dev]
  resources: [taskmanagerbackups]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [taskmanager.dev]
  resources: [taskmanagerbackups/status]
  verbs: [patch]
- apiGroups: [taskmanager.dev]
  resources: [taskmanagerrestores]
  verbs: [get, list, watch]
- apiGroups: [taskmanager.dev]
  resources: [taskmanagerrestores/status]
  verbs: [patch]
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [get, create, patch]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
{{- end }}

{{/* Whether the operator's rights are granted per namespace (Roles) rather than cluster-wide. */}}
{{- define "taskmanager-operator.namespacedRbac" -}}
{{- if and (not .Values.watch.allNamespaces) .Values.rbac.namespaced }}true{{ end }}
{{- end }}
