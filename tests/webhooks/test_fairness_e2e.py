"""A tarpit receiver of tenant A does not delay tenant B: real webhooks workers, real receivers on loopback.

The webhooks worker has two processes and each tenant may hold one of them (webhook_tenant_in_flight=1).
A's receiver accepts the POST and never answers; B's deliveries must all arrive while A's attempt is
still held, i.e. before the attempt's time limit frees that process. B's latencies with and without
the tarpit are measured as the causality check; their figures belong to bench/webhook_fairness.py.
"""

from __future__ import annotations

import json
import statistics
import time

import pytest

from tests.webhooks.helpers import add_endpoint, attempts, deliveries, emit_event, new_tenant, wait_for
from tests.webhooks.receiver import Receiver, Reply

pytestmark = pytest.mark.integration
ATTEMPT_LIMIT_S = 12.0
B_EVENTS = 20
FAIR = {
    "TRAINFORGE_WEBHOOK_TENANT_IN_FLIGHT": "1",
    "TRAINFORGE_WEBHOOK_ENDPOINT_IN_FLIGHT": "1",
    "TRAINFORGE_WEBHOOK_TIMEOUT_S": str(ATTEMPT_LIMIT_S),
}


@pytest.fixture(scope="module")
def service_env(service_env: dict[str, str]) -> dict[str, str]:
    """Give each tenant one of the webhooks worker's two processes, and attempts a 12 s limit.

    The limit is the window B's round must fit in while A's attempt holds its process: 8 s was
    missed once under the parallel suite's load (B's 20 deliveries took 9 s).
    """
    return {**service_env, **FAIR}


def b_round(job_id: str, rx: Receiver, first_epoch: int) -> tuple[list[float], float]:
    """Emit B_EVENTS events of B's job; return each one's emit-to-receiver seconds and when the last came."""
    before = len(rx.requests)
    emitted = {}
    for epoch in range(first_epoch, first_epoch + B_EVENTS):
        emitted[epoch] = time.time()
        emit_event(job_id, "on_train_epoch_end", {"epoch": epoch})
    got = rx.wait_for(before + B_EVENTS, timeout=30)[before:]
    latencies = [r.at - emitted[json.loads(r.body)["data"]["epoch"]] for r in got]
    return latencies, max(r.at for r in got)


def p99(values: list[float]) -> float:
    return sorted(values)[max(0, round(0.99 * len(values)) - 1)]


def test_a_tarpit_of_tenant_a_does_not_delay_tenant_b(settings_env, make_job, webhook_workers) -> None:
    tenant_a, tenant_b = new_tenant(), new_tenant()
    # The tarpit reads the POST and answers long after any attempt gave up.
    tarpit = Receiver(lambda _r, _n: Reply(200, delay_s=3 * ATTEMPT_LIMIT_S))
    with tarpit, Receiver() as fast:
        add_endpoint(tenant_a, tarpit.url + "/a")
        b_endpoint, _ = add_endpoint(tenant_b, fast.url + "/b")
        job_a, job_b = make_job(tenant=tenant_a), make_job(tenant=tenant_b)
        without, _ = b_round(job_b, fast, 0)

        for epoch in range(6):  # far more than A's share: the rest must wait for A's own slot
            emit_event(job_a, "on_train_epoch_end", {"epoch": epoch})
        held = tarpit.wait_for(1, timeout=15)[0]
        with_tarpit, b_done = b_round(job_b, fast, 100)
        still_held = b_done < held.at + ATTEMPT_LIMIT_S
        tarpit_calls = len(tarpit.requests)

    figures = (
        f"B p50/p99 without A's tarpit {statistics.median(without) * 1e3:.0f}/{p99(without) * 1e3:.0f} ms, "
        f"with {statistics.median(with_tarpit) * 1e3:.0f}/{p99(with_tarpit) * 1e3:.0f} ms; "
        f"B's last delivery {b_done - held.at:.2f} s after A's attempt began"
    )
    assert still_held, figures  # every B delivery arrived while A's attempt still held its process
    assert tarpit_calls == 1, figures  # A never had a second attempt running: its share is one slot
    rows = deliveries(endpoint_id=b_endpoint)
    wait_for(lambda: all(d.status == "succeeded" for d in deliveries(endpoint_id=b_endpoint)), what="B done")
    assert len(rows) == 2 * B_EVENTS and all(len(attempts(d.id)) == 1 for d in rows)  # none was retried
    assert max(with_tarpit) < ATTEMPT_LIMIT_S / 2, figures
