"""Pure functions from a TaskManager to the manifests of its children; none talks to the cluster."""
