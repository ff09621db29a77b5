"""The events of one reconcile as they are posted (reconcile/outcome.py's Events): one event per
type and reason for the children changed, naming each; every other event as it came.
tests/unit/test_reconcile.py shows what `kubectl describe` lists after whole reconciles."""

from __future__ import annotations

from taskmanager_operator.k8s import EVENT_MESSAGE_LIMIT
from taskmanager_operator.reconcile import Event, Events


def created(*objects: str) -> Event:
    return Event.listing("Normal", "Created", objects)


def test_the_children_created_make_one_event_naming_each_in_order() -> None:
    events = Events()
    events.append(created("Secret demo-secrets"))
    events.append(Event("Normal", "SigningKeyPublished", "key k2 verifies tokens"))
    events += [created("ConfigMap demo-config"), created("Deployment demo-api")]
    events.append(Event.listing("Normal", "Updated", ["Service demo-api"]))
    events.append(Event.listing("Normal", "Deleted", ["HorizontalPodAutoscaler demo-api"]))
    events.append(Event.listing("Normal", "Updated", ["NetworkPolicy demo-api"]))

    assert [(event.reason, event.message) for event in events] == [
        ("Created", "Created Secret demo-secrets, ConfigMap demo-config, Deployment demo-api"),
        ("SigningKeyPublished", "key k2 verifies tokens"),
        ("Updated", "Updated Service demo-api, NetworkPolicy demo-api"),
        ("Deleted", "Deleted HorizontalPodAutoscaler demo-api"),
    ]
    assert events[0].objects == (
        "Secret demo-secrets",
        "ConfigMap demo-config",
        "Deployment demo-api",
    )


def test_an_object_changed_twice_is_named_once() -> None:
    events = Events([created("Service demo-api"), created("Job demo-migrate-1")])
    events.append(created("Service demo-api"))
    assert events == [created("Service demo-api", "Job demo-migrate-1")]


def test_a_warning_of_another_cause_stays_its_own_event_and_a_repeat_goes() -> None:
    quota = Event("Warning", "ApplyFailed", "Service demo-api: exceeded quota")
    webhook = Event("Warning", "ApplyFailed", "Ingress demo-api: denied by a webhook")
    expired = [
        Event("Normal", "BackupExpired", f"Deleted backup {name} and its data")
        for name in ("old", "older")
    ]

    events = Events([quota, webhook, quota, *expired, expired[0]])

    assert list(events) == [quota, webhook, *expired]


def test_a_list_too_long_for_a_message_ends_with_how_many_more() -> None:
    objects = [f"NetworkPolicy {'x' * 50}-{index:02}" for index in range(40)]

    (event,) = Events(created(name) for name in objects)

    assert len(event.message) <= EVENT_MESSAGE_LIMIT
    shown, _, more = event.message.removeprefix("Created ").rpartition(" and ")
    names = shown.split(", ")
    assert names == objects[: len(names)], "whole names, in order"
    assert more == f"{len(objects) - len(names)} more"
    assert len(names) > 10, "as many as fit"
    assert event.objects == tuple(objects), "every one is kept"


def test_a_list_that_just_fits_is_whole() -> None:
    name = "x" * (EVENT_MESSAGE_LIMIT - len("Created Secret "))
    assert created(f"Secret {name}").message == f"Created Secret {name}"
    assert len(created(f"Secret {name}").message) == EVENT_MESSAGE_LIMIT
