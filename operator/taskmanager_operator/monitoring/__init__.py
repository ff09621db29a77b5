"""What Prometheus and Grafana need to watch one TaskManager: its series, SLIs, rules, dashboard.

Pure functions of the TaskManager's spec, built on the app's metric contract
(taskmanager_api.metric_contract); builders/monitoring.py wraps them in Kubernetes objects.
"""
