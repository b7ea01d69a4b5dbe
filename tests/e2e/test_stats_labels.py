"""The bootstrap's `stats_tags` (envoy/stats_tags.yaml) turn the filter's name-encoded labels into
real Prometheus labels, after an ordinary settings change made with the official SDK through
Envoy in front of three nodes."""

from __future__ import annotations

import meilisearch

from conftest import NODE_KEY
from harness import Envoy, Fleet

TASK_TIMEOUT_MS = 30_000


def test_sdk_settings_change_is_labelled_by_index_and_result(fleet: Fleet, envoy: Envoy) -> None:
    client = meilisearch.Client(envoy.url, NODE_KEY, timeout=10)
    task = client.index("movies").update_settings({"filterableAttributes": ["genre"]})
    # With three nodes behind a round-robin cluster this poll only works because the filter
    # answers its own task uids (without it: task_not_found on another node).
    finished = client.wait_for_task(task.task_uid, timeout_in_ms=TASK_TIMEOUT_MS)
    assert finished.status == "succeeded", finished

    for i in range(fleet.size):
        assert fleet.node_settings(i, "movies")["filterableAttributes"] == ["genre"], f"node {i}"

    # In /stats the labels are still part of the name; the tag regexes cut them out for Prometheus.
    assert envoy.stat("wasmcustom.miroir_settings_version.index.movies") == 1
    assert envoy.prometheus_value("miroir_settings_version", index="movies") == 1
    assert envoy.prometheus_value("miroir_settings_broadcast_total", index="movies", result="succeeded") == 1
    assert envoy.prometheus_value("miroir_settings_divergence", index="movies") == 0
    # No series keeps an encoded label in its name.
    leaked = [line for line in envoy.prometheus().splitlines() if ".index." in line or "_index_movies" in line]
    assert leaked == []
