"""StateTracker: a STATE is released only once every record before it was delivered."""

from target_restapi.output.state import StateTracker


def make():
    emitted = []
    return StateTracker(emitted.append), emitted


def records(tracker, n):
    return [tracker.next_seq() for _ in range(n)]


def test_state_with_no_records_before_it_is_emitted_at_once():
    tracker, emitted = make()
    tracker.state(b'{"a":1}')
    assert emitted == [b'{"a":1}']
    assert tracker.held == 0


def test_state_waits_for_the_open_unit_before_it():
    tracker, emitted = make()
    (seq,) = records(tracker, 1)
    tracker.open(seq)
    tracker.state(b"s1")
    assert emitted == []
    assert tracker.held == 1
    tracker.close(seq)
    assert emitted == [b"s1"]
    assert tracker.held == 0


def test_units_opened_after_a_state_do_not_hold_it():
    tracker, emitted = make()
    first, second = records(tracker, 2)
    tracker.open(first)
    tracker.open(second)
    tracker.close(first)
    tracker.close(second)
    tracker.state(b"s1")
    third = tracker.next_seq()
    tracker.open(third)
    tracker.state(b"s2")
    assert emitted == [b"s1"]
    tracker.close(third)
    assert emitted == [b"s1", b"s2"]


def test_out_of_order_closes_release_states_in_order():
    tracker, emitted = make()
    a = tracker.next_seq()
    tracker.open(a)
    tracker.state(b"after-a")
    b = tracker.next_seq()
    tracker.open(b)
    tracker.state(b"after-b")
    c = tracker.next_seq()
    tracker.open(c)
    tracker.state(b"after-c")

    tracker.close(c)  # the newest unit finishes first: nothing may be released
    assert emitted == []
    tracker.close(b)  # still waiting for a
    assert emitted == []
    tracker.close(a)  # everything is delivered: the newest STATE supersedes the others
    assert emitted == [b"after-c"]
    assert tracker.held == 0


def test_partial_release_when_the_oldest_unit_closes_first():
    tracker, emitted = make()
    a = tracker.next_seq()
    tracker.open(a)
    tracker.state(b"after-a")
    b = tracker.next_seq()
    tracker.open(b)
    tracker.state(b"after-b")

    tracker.close(a)
    assert emitted == [b"after-a"]
    tracker.close(b)
    assert emitted == [b"after-a", b"after-b"]


def test_a_unit_covering_later_records_holds_states_until_it_closes():
    # A batch opened by its first record also carries records that came after a STATE.
    tracker, emitted = make()
    batch = tracker.next_seq()
    tracker.open(batch)
    tracker.next_seq()  # second record joins the same batch, no unit of its own
    tracker.state(b"s1")
    tracker.next_seq()  # third record joins the same batch too
    tracker.state(b"s2")
    assert emitted == []
    tracker.close(batch)
    assert emitted == [b"s2"]


def test_a_unit_still_open_blocks_states_after_it_even_if_later_units_closed():
    tracker, emitted = make()
    old = tracker.next_seq()
    tracker.open(old)
    tracker.state(b"s1")
    new = tracker.next_seq()
    tracker.open(new)
    tracker.close(new)
    tracker.state(b"s2")
    assert emitted == []
    assert tracker.held == 2
    tracker.close(old)
    assert emitted == [b"s2"]
