"""The level-based reconcile of a TaskManager, one module per concern; data flows one way:

- `secret_refs`: the user's Secrets the spec refers to (a missing one stops the reconcile);
- `apply`: server-side apply what is wanted, delete the rest, each change told in an event;
- `migration_gate`: which image the API may run, decided from the migration Job (pure);
- `observe`: the children's state turned into conditions, and the phase (pure);
- `status_writer`: the one status write, and the events of the conditions that moved;
- `reconciler`: `Reconciler.reconcile`, which runs them in that order.
- `outcome`: what a reconcile hands back; its `Events` make one event of the children it
  created (updated, deleted), naming each.
"""

from taskmanager_operator.reconcile.outcome import Event, Events, Observed, Outcome
from taskmanager_operator.reconcile.reconciler import Reconciler
from taskmanager_operator.reconcile.status_writer import condition_events

__all__ = ["Event", "Events", "Observed", "Outcome", "Reconciler", "condition_events"]
