"""The upstream of the hot-path and footprint benchmarks: three dev nodes holding the same small
`movies` index, and the search request sent to them."""

from __future__ import annotations

import json
from pathlib import Path

import requests

from common import Fleet, wait_until

NODES = 3
INDEX = "movies"
DOCUMENTS = [{"id": i, "title": f"{'star' if i % 3 == 0 else 'moon'} voyage {i}", "year": 1970 + i % 50}
             for i in range(50)]
# A typical small search: a query, a page size, the fields to return.
SEARCH_BODY = json.dumps({"q": "star", "limit": 10, "attributesToRetrieve": ["id", "title"]}, separators=(",", ":"))
SEARCH_PATH = f"/indexes/{INDEX}/search"


def start_search_fleet(workdir: Path) -> Fleet:
    """Three dev nodes, no faults, each holding the `movies` documents (loaded straight into each
    node, so no filter is involved in the set-up)."""
    fleet = Fleet(NODES, workdir).start()
    try:
        for i in range(NODES):
            answer = requests.post(fleet.node_url(i) + f"/indexes/{INDEX}/documents", json=DOCUMENTS, timeout=10)
            answer.raise_for_status()
            uid = answer.json()["taskUid"]
            wait_until(lambda: requests.get(fleet.node_url(i) + f"/tasks/{uid}", timeout=5).json()["status"] == "succeeded",
                       10, f"node {i} to index the documents")
        check = requests.post(fleet.node_url(0) + SEARCH_PATH, data=SEARCH_BODY,
                              headers={"content-type": "application/json"}, timeout=5)
        if check.status_code != 200 or not check.json().get("hits"):
            raise RuntimeError(f"the search the benchmark sends finds nothing: {check.status_code} {check.text[:300]}")
    except BaseException:
        fleet.stop()
        raise
    return fleet
