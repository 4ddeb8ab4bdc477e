"""InOrder: writes run in the order requests were sent, whatever order they end in."""

from __future__ import annotations

from target_restapi.output.in_order import InOrder


def test_a_write_waits_for_every_earlier_request_and_an_end_without_a_write_frees_it():
    order, written = InOrder(), []
    for request in (1, 2, 3, 4):
        order.sent(request)
    order.ended(3, lambda: written.append(3))
    order.ended(2, lambda: written.append(2))
    assert written == []  # 1 is still in flight
    order.ended(1)  # interrupted: no line of its own
    assert written == [2, 3]
    order.ended(3)  # the end after its write changes nothing
    order.ended(4, lambda: written.append(4))
    assert written == [2, 3, 4]


def test_flush_writes_what_ended_and_skips_requests_never_sent():
    order, written = InOrder(), []
    for request in (1, 2, 3):
        order.sent(request)
    order.ended(2, lambda: written.append(2))
    order.flush()  # 1 and 3 never ran: closed before a worker took them
    assert written == [2]
    order.ended(3, lambda: written.append(3))  # too late: nothing is waiting any more
    assert written == [2]
