"""Window bookkeeping: golden cases and a property (every event counted exactly once)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from stream_monitor.monitor.windows import CountWindows, EventTimeWindows, WindowBounds


def test_count_windows_close_every_n_events() -> None:
    windows = CountWindows(3)
    closed = []
    for t in [50, 10, 30, 40, 60, 70, 80]:
        assert windows.open_windows(t) == [windows.index]
        closed += windows.closed_windows()
    assert closed == [(0, WindowBounds(0, 10, 50)), (1, WindowBounds(1, 40, 70))]
    assert windows.flush() == [(2, WindowBounds(2, 80, 80))]
    assert windows.flush() == []


def test_tumbling_out_of_order_within_lateness_lands_in_its_window() -> None:
    windows = EventTimeWindows(size_ms=100, step_ms=100, lateness_ms=50)
    assert windows.open_windows(10) == [0]
    assert windows.open_windows(120) == [100]
    assert windows.closed_windows() == []  # watermark 70 < 100
    assert windows.open_windows(90) == [0]  # out of order, still on time
    assert windows.open_windows(160) == [100]
    assert windows.closed_windows() == [(0, WindowBounds(0, 0, 100))]  # watermark 110
    assert windows.open_windows(99) == []  # late: its window has closed
    assert windows.watermark == 110


def test_late_event_for_a_window_that_never_opened() -> None:
    windows = EventTimeWindows(size_ms=100, step_ms=100, lateness_ms=0)
    windows.open_windows(5)
    windows.open_windows(500)
    assert [b.start for _, b in windows.closed_windows()] == [0]
    assert windows.open_windows(250) == []  # window 200 ended before the watermark (500)


def test_hopping_membership() -> None:
    windows = EventTimeWindows(size_ms=300, step_ms=100, lateness_ms=0)
    assert windows.kind == "hopping"
    assert windows.open_windows(250) == [0, 100, 200]
    assert windows.open_windows(420) == [200, 300, 400]  # 0 and 100 ended before 420
    closed = windows.closed_windows()
    assert [(k, b.start, b.end) for k, b in closed] == [(0, 0, 300), (100, 100, 400)]
    assert [b.index for _, b in windows.flush()] == [2, 3, 4]


@settings(max_examples=200)
@given(
    st.lists(st.integers(0, 5_000), min_size=1, max_size=300),
    st.sampled_from([50, 100, 700]),
    st.integers(0, 400),
)
def test_every_event_counted_once_in_a_window_or_as_late(
    times: list[int], size: int, lateness: int
) -> None:
    windows = EventTimeWindows(size_ms=size, step_ms=size, lateness_ms=lateness)
    members: dict[int, list[int]] = {}
    late = 0
    emitted: list[int] = []
    for t in times:
        keys = windows.open_windows(t)
        assert len(keys) <= 1
        if keys:
            assert keys[0] <= t < keys[0] + size  # the right window
            members.setdefault(keys[0], []).append(t)
        else:
            late += 1
            assert t < windows.watermark  # only events behind the watermark are late
        emitted += [k for k, _ in windows.closed_windows()]
    emitted += [k for k, _ in windows.flush()]
    assert len(emitted) == len(set(emitted))  # each window closes once
    assert emitted == sorted(emitted)  # in order
    assert sum(len(members[k]) for k in emitted) + late == len(times)
