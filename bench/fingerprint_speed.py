"""Section 3 — fingerprint throughput inside Envoy's V8, and the same code natively.

During verify the filter parses each node's settings read-back and fingerprints it (RFC 8785
canonical form + SHA-256, and the check of the proposed keys on the same pass). It counts what it
did in two Envoy counters per index, `miroir_verify_fingerprint_bytes_total` and
`miroir_verify_fingerprint_us_total` (Envoy's clock, read by the VM before and after): the
section reads both around every commit, so each commit gives the bytes it fingerprinted and the
microseconds the VM spent on them. That is the figure compared with the goal.

For scale, the same step is also estimated from outside, by difference, on the same one-node fleet
with no injected delay:

  index `fp_<size>` holds a large settings body, put on the node out of band (the filter never
  sees it as a write); index `fp_tiny` holds the default settings. The same tiny PATCH
  (`searchCutoffMs`) is committed through the filter on each, interleaved, and each commit's
  duration is read from the filter's own task (`finishedAt − startedAt`, the value its
  `miroir_settings_broadcast_duration_ms` histogram records). The propose and the poll are the
  same for both; the node's task and the verify differ with the settings' size. So

      in-VM verify time ≈ median(duration fp_<size>) − median(duration fp_tiny)
                          − (node task fp_<size> − node task fp_tiny)
                          − (direct GET of fp_<size> − direct GET of fp_tiny)

  where the node task's duration is the node's own (`startedAt` → `finishedAt` of its
  settingsUpdate task, asked of the node: a node rewrites the whole settings of the index, so it
  takes longer on a large one), and the direct GET, measured by a client (curl) straight to the
  node, removes the node's own time to serialize and send the larger body. What remains is Envoy
  handing the body to the VM plus the filter's reading of it (canonical form, SHA-256, the check
  of the proposed key) and the polls' timing: an upper bound on the fingerprint alone.

The filter's task timestamps have millisecond resolution and the polls put a few ms of jitter on
every commit, so that estimate is only resolved above RESOLVED_MS (not for a 10 KB body).

`fingerprint-native` (bench/fingerprint-native) times `miroir_filter::core::fingerprint` on the
very bytes the node returned, and the fingerprint the filter recorded for the node is checked to
be the native one: both sides hashed the same body."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from common import Fleet, epoch_ms, median, paths, poll_task, run_command, start_envoy
from settings_bodies import encoded

SIZES = {"10 KB": 10_000, "1 MB": 1_000_000, "5 MB": 5_000_000}
TINY = "tiny"
RESOLVED_MS = 5.0
NATIVE_BINARY = "fingerprint-native"


def index_for(label: str) -> str:
    return "fp_" + label.replace(" ", "").lower()


@dataclass
class SizeResult:
    label: str
    request_bytes: int
    readback_bytes: int
    commit_ms: list[float] = field(default_factory=list)        # tiny PATCH on this index, task duration
    node_task_ms: list[float] = field(default_factory=list)     # the node's own task of that PATCH
    direct_get_ms: list[float] = field(default_factory=list)    # client GET straight to the node
    full_patch_ms: list[float] = field(default_factory=list)    # PATCH of the large body itself
    vm_bytes: list[int] = field(default_factory=list)           # the filter's counters, per commit:
    vm_us: list[int] = field(default_factory=list)              #   bytes fingerprinted, µs spent
    filter_fingerprint: str = ""
    native: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class FingerprintResult:
    sizes: dict[str, SizeResult] = field(default_factory=dict)
    repetitions: int = 0

    def vm_mbps(self, label: str) -> float | None:
        """Median over the commits of the filter's own bytes / µs (= MB/s); None if never timed."""
        size = self.sizes[label]
        rates = [b / us for b, us in zip(size.vm_bytes, size.vm_us) if b and us]
        return median(rates) if rates else None

    def vm_ms(self, label: str) -> float:
        return median(self.sizes[label].vm_us) / 1000

    def verify_ms(self, label: str) -> float:
        big, tiny = self.sizes[label], self.sizes[TINY]
        return (median(big.commit_ms) - median(tiny.commit_ms)
                - (median(big.node_task_ms) - median(tiny.node_task_ms))
                - (median(big.direct_get_ms) - median(tiny.direct_get_ms)))

    def as_dict(self) -> dict[str, Any]:
        return {"repetitions": self.repetitions, "sizes": {k: v.as_dict() for k, v in self.sizes.items()},
                "verify_ms": {k: self.verify_ms(k) for k in SIZES if k in self.sizes},
                "vm_mbps": {k: self.vm_mbps(k) for k in self.sizes}}


def _direct_get(fleet: Fleet, index: str) -> tuple[float, bytes]:
    """The read-back straight from the node, and how long a client takes to get it. Timed with
    curl when there is one: like Envoy, it receives into C buffers, whereas Python's own receive
    costs a few ms more on 5 MB, which would be wrongly subtracted from the in-VM figure."""
    url = fleet.node_url(0) + f"/indexes/{index}/settings"
    started = time.monotonic()
    answer = requests.get(url, timeout=60)
    elapsed = (time.monotonic() - started) * 1000
    answer.raise_for_status()
    curl = shutil.which("curl")
    if curl:
        timed = run_command([curl, "-sS", "-f", "-o", "/dev/null", "-w", "%{time_total}", url], timeout=60)
        elapsed = float(timed.stdout) * 1000
    return elapsed, answer.content


def _fingerprint_counters(envoy: Any, index: str) -> tuple[int, int]:
    """The filter's fingerprint counters of `index`: bytes read back and µs spent, so far."""
    stats = envoy.stats(f"^wasmcustom\\.miroir_verify_fingerprint_[a-z]+_total\\.index\\.{index}$")
    return (int(stats.get(f"wasmcustom.miroir_verify_fingerprint_bytes_total.index.{index}", 0)),
            int(stats.get(f"wasmcustom.miroir_verify_fingerprint_us_total.index.{index}", 0)))


def _commit(base_url: str, index: str, body: bytes) -> dict[str, Any]:
    answer = requests.patch(f"{base_url}/indexes/{index}/settings", data=body,
                            headers={"content-type": "application/json"}, timeout=120)
    if answer.status_code != 202:
        raise RuntimeError(f"PATCH {index} ({len(body)} bytes): {answer.status_code} {answer.text[:300]}")
    task, _ = poll_task(base_url, answer.json()["taskUid"], timeout=300)
    if task["status"] != "succeeded":
        raise RuntimeError(f"commit on {index} did not succeed: {json.dumps(task)[:500]}")
    return task


def _node_task_ms(fleet: Fleet, index: str) -> float:
    """The duration of the node's latest settingsUpdate task of `index`: the node's side of the
    commit just made (the filter's PATCH is the only settings write on it since the last one)."""
    answer = requests.get(fleet.node_url(0) + "/tasks", timeout=30,
                          params={"indexUids": index, "types": "settingsUpdate", "limit": 1})
    answer.raise_for_status()
    results = answer.json()["results"]
    if not results or results[0]["status"] != "succeeded":
        raise RuntimeError(f"no succeeded settingsUpdate task of {index} on the node: {answer.text[:300]}")
    return _duration_ms(results[0])


def _duration_ms(task: dict[str, Any]) -> float:
    return epoch_ms(task["finishedAt"]) - epoch_ms(task["startedAt"])


def run(workdir: Path, *, repetitions: int, full_patch_repetitions: int, log: Any = print) -> FingerprintResult:
    result = FingerprintResult(repetitions=repetitions)
    bodies = {label: encoded(size) for label, size in SIZES.items()}
    fleet = Fleet(1, workdir).start()
    try:
        envoy = start_envoy(fleet, workdir, "fingerprint", wasm=paths.filter_wasm())
        try:
            # Large settings go onto the node behind the filter's back; the tiny index is created
            # the same way with a one-key body, so both exist before the first measured commit.
            fleet.out_of_band(0, index_for(TINY), {"searchCutoffMs": 99})
            for label, body in bodies.items():
                fleet.out_of_band(0, index_for(label), json.loads(body))
            labels = [TINY, *bodies]
            for label in labels:
                _, readback = _direct_get(fleet, index_for(label))
                result.sizes[label] = SizeResult(label=label, request_bytes=len(bodies.get(label, b"")),
                                                 readback_bytes=len(readback))
            # Interleaved: tiny, 10 KB, 1 MB, 5 MB, tiny, … so machine drift hits all alike. One
            # unmeasured round first: the first commit on an index opens connections.
            for rep in range(repetitions + 1):
                for label in labels:
                    index = index_for(label)
                    bytes_before, us_before = _fingerprint_counters(envoy, index)
                    task = _commit(envoy.url, index, json.dumps({"searchCutoffMs": 100 + rep}).encode())
                    bytes_after, us_after = _fingerprint_counters(envoy, index)
                    node_task_ms = _node_task_ms(fleet, index)
                    get_ms, readback = _direct_get(fleet, index)
                    if rep == 0:
                        continue
                    size = result.sizes[label]
                    size.commit_ms.append(_duration_ms(task))
                    size.node_task_ms.append(node_task_ms)
                    size.direct_get_ms.append(get_ms)
                    size.vm_bytes.append(bytes_after - bytes_before)
                    size.vm_us.append(us_after - us_before)
                    size.readback_bytes = len(readback)
                    size.filter_fingerprint = task["miroir"]["nodes"][0]["fingerprint"]
                    (workdir / f"readback-{index}.json").write_bytes(readback)
                if rep == 0:
                    log("  warm-up round done (not counted)")
                else:
                    log(f"  round {rep}/{repetitions}: "
                        + ", ".join(f"{label} {result.sizes[label].commit_ms[-1]:.0f} ms "
                                    f"(in VM {result.sizes[label].vm_us[-1] / 1000:.2f} ms)" for label in labels))
            # The whole commit of the large body itself, for scale (request body through the filter).
            for label, body in bodies.items():
                for _ in range(full_patch_repetitions):
                    task = _commit(envoy.url, index_for(label), body)
                    result.sizes[label].full_patch_ms.append(_duration_ms(task))
                log(f"  PATCH of the {label} body itself: {median(result.sizes[label].full_patch_ms):.0f} ms")
        finally:
            envoy.stop()
    finally:
        fleet.stop()
    _native(workdir, result)
    return result


def _native(workdir: Path, result: FingerprintResult) -> None:
    """Time the same read-backs natively and check the filter hashed the same bytes."""
    binary = paths.TARGET_DIR / "release" / NATIVE_BINARY
    files = {label: workdir / f"readback-{index_for(label)}.json" for label in result.sizes}
    output = run_command([str(binary), "--min-seconds", "1", *map(str, files.values())], timeout=300)
    by_file = {json.loads(line)["file"]: json.loads(line) for line in output.stdout.splitlines() if line.strip()}
    for label, file in files.items():
        native = by_file[str(file)]
        size = result.sizes[label]
        size.native = native
        if native["fingerprint"] != size.filter_fingerprint:
            raise RuntimeError(f"{label}: the filter recorded {size.filter_fingerprint} for the node, native "
                               f"fingerprint of the same read-back is {native['fingerprint']}")
