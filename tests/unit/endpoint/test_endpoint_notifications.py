"""notifications.py: a bounded, thread-safe outbox that counts what it drops."""

from __future__ import annotations

import asyncio
import threading

import pytest

from radical.orbit.endpoint.notifications import NotificationQueue


class TestNotificationQueue:
    def test_fifo_and_payload_copied(self) -> None:
        queue = NotificationQueue(10)
        payload = {"a": 1}
        queue.put("p", "sid", "t", payload)
        payload["a"] = 2
        queue.put("p", None, "t2", {})
        first = queue.pop()
        assert first is not None and first.payload == {"a": 1} and first.sid == "sid" and first.dropped == 0
        second = queue.pop()
        assert second is not None and second.topic == "t2"
        assert queue.pop() is None

    def test_bound_drops_oldest_and_reports_count_once(self) -> None:
        queue = NotificationQueue(3)
        for i in range(8):
            queue.put("p", None, "t", {"i": i})
        assert len(queue) == 3 and queue.dropped == 5 and queue.dropped_total == 5
        frames = [queue.pop() for _ in range(3)]
        assert [f.payload["i"] for f in frames if f] == [5, 6, 7]
        assert [f.dropped for f in frames if f] == [5, 0, 0]
        assert queue.dropped == 0 and queue.dropped_total == 5

    def test_push_back_keeps_order_and_drop_count(self) -> None:
        queue = NotificationQueue(2)
        for i in range(3):
            queue.put("p", None, "t", {"i": i})
        frame = queue.pop()
        assert frame is not None and frame.dropped == 1
        queue.push_back(frame)  # the send failed
        again = queue.pop()
        assert again is not None and again.payload == {"i": 1} and again.dropped == 1

    def test_push_back_into_a_full_queue_counts_a_drop(self) -> None:
        queue = NotificationQueue(1)
        queue.put("p", None, "t", {"i": 0})
        frame = queue.pop()
        assert frame is not None
        queue.put("p", None, "t", {"i": 1})
        queue.push_back(frame)
        assert queue.dropped == 1 and len(queue) == 1

    def test_put_from_threads_wakes_the_loop(self) -> None:
        async def main() -> int:
            queue = NotificationQueue(100_000)
            queue.bind(asyncio.get_running_loop())
            threads = [threading.Thread(target=lambda: [queue.put("p", None, "t", {}) for _ in range(500)]) for _ in range(4)]
            for t in threads:
                t.start()
            got = 0
            while got < 2000:
                await asyncio.wait_for(queue.wait(), 5)
                while queue.pop() is not None:
                    got += 1
            for t in threads:
                t.join()
            return got

        assert asyncio.run(main()) == 2000

    def test_needs_a_positive_size_and_a_loop(self) -> None:
        with pytest.raises(ValueError):
            NotificationQueue(0)
        with pytest.raises(RuntimeError, match="bind"):
            asyncio.run(NotificationQueue(1).wait())

    def test_unserialisable_payload_is_refused_at_the_source(self) -> None:
        from radical.orbit.errors import UsageError

        queue = NotificationQueue(10)
        with pytest.raises(UsageError, match="p/t: the payload must be JSON-serialisable"):
            queue.put("p", None, "t", {"x": object()})
        assert len(queue) == 0

    def test_owner_rides_along(self) -> None:
        queue = NotificationQueue(10)
        queue.put("p", "sid", "t", {}, "alice")
        queue.put("p", None, "t", {})
        frames = [queue.pop(), queue.pop()]
        assert [f.owner for f in frames if f] == ["alice", None]


class TestNotificationSize:
    def test_default_is_256_kib_of_json(self) -> None:
        queue = NotificationQueue(10)
        assert queue.max_payload == 256 * 1024
        fits = {"x": "a" * (256 * 1024 - len('{"x":""}'))}  # exactly the limit as JSON
        queue.put("p", None, "t", fits)
        assert len(queue) == 1 and queue.dropped == 0

    def test_a_bigger_one_is_dropped_with_one_line_that_never_shows_the_payload(self, caplog: pytest.LogCaptureFixture) -> None:
        queue = NotificationQueue(10, max_payload=1024)
        secret = "s3cr3t-" + "z" * 2000
        with caplog.at_level("WARNING", logger="radical.orbit.endpoint.notifications"):
            queue.put("globus", "sid", "transfer_status", {"blob": secret}, "alice")
        assert len(queue) == 0 and queue.dropped == 1 and queue.dropped_total == 1
        (record,) = caplog.records
        line = record.getMessage()
        assert "globus/transfer_status" in line and "2018 bytes" in line and "1024" in line, line
        assert "--max-notification-bytes" in line and "s3cr3t" not in line
        queue.put("globus", "sid", "transfer_status", {"small": 1}, "alice")
        frame = queue.pop()
        assert frame is not None and frame.dropped == 1  # the gap reaches the client with the next one

    def test_the_limit_must_be_positive(self) -> None:
        with pytest.raises(ValueError, match="max_payload"):
            NotificationQueue(10, max_payload=0)


class TestNumbering:
    def test_numbers_count_within_one_run(self) -> None:
        queue = NotificationQueue(10)
        for i in range(3):
            queue.put("p", None, "t", {"i": i})
        frames = [queue.pop() for _ in range(3)]
        assert [f.seq for f in frames if f is not None] == [1, 2, 3]
        assert len(queue.run) >= 16 and NotificationQueue(1).run != queue.run

    def test_requeued_frames_go_first_in_their_order_and_the_oldest_go_when_full(self) -> None:
        queue = NotificationQueue(4)
        for i in range(3):
            queue.put("p", None, "t", {"i": i})
        sent = [queue.pop(), queue.pop()]
        queue.put("p", None, "t", {"i": 3})
        queue.requeue([f for f in sent if f is not None])
        assert [f.seq for f in iter(queue.pop, None)] == [1, 2, 3, 4]
        for i in range(4):
            queue.put("p", None, "t", {"i": i})
        out = [queue.pop() for _ in range(2)]
        queue.requeue([f for f in out if f is not None])
        queue.put("p", None, "t", {"i": 9})  # five for four places: the oldest goes, and is counted
        first = queue.pop()
        assert first is not None and first.seq == 6 and first.dropped == 1

