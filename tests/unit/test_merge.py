"""The merge of a partition's predictions and labels by record timestamp (pure logic)."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from stream_monitor.runtime.merge import Merge


@dataclass(frozen=True)
class Record:
    topic: str
    offset: int
    timestamp: int


def records(topic: str, timestamps: list[int]) -> list[Record]:
    return [Record(topic, i, t) for i, t in enumerate(timestamps)]


def never(_: str) -> bool:
    return False


def test_lower_timestamp_first_and_predictions_first_on_ties() -> None:
    merge = Merge("p", "l")
    merge.add("p", records("p", [1, 3, 5]))
    merge.add("l", records("l", [2, 3, 9]))
    out = merge.release(never)
    assert [(r.topic, r.timestamp) for r in out] == [
        ("p", 1),
        ("l", 2),
        ("p", 3),
        ("l", 3),
        ("p", 5),
        ("l", 9),
    ]
    assert len(merge) == 0


def test_one_side_waits_while_the_other_may_have_more() -> None:
    merge = Merge("p", "l")
    merge.add("p", records("p", [1, 2, 10, 11]))
    merge.add("l", records("l", [5]))
    waiting = {"l"}
    out = merge.release(waiting.__contains__)
    assert [r.timestamp for r in out] == [1, 2, 5]  # 10 and 11 wait: a label may come before
    assert len(merge) == 2
    assert merge.release(waiting.__contains__) == []
    waiting.clear()  # nothing more of the labels: the predictions go
    assert [r.timestamp for r in merge.release(waiting.__contains__)] == [10, 11]
    assert len(merge) == 0


def test_labels_wait_for_predictions_too() -> None:
    merge = Merge("p", "l")
    merge.add("l", records("l", [4, 7]))
    assert merge.release({"p"}.__contains__) == []
    assert [r.timestamp for r in merge.release(never)] == [4, 7]


@given(
    st.lists(st.integers(0, 50), max_size=30),
    st.lists(st.integers(0, 50), max_size=30),
    st.lists(st.integers(1, 10), min_size=1, max_size=10),
)
def test_the_order_does_not_depend_on_how_fetches_split_the_input(
    predictions: list[int], labels: list[int], sizes: list[int]
) -> None:
    """Fed in fetches of any sizes (the other side waiting while it has more to come), the
    merge releases the records in the order of one merge of everything."""
    p, lab = records("p", sorted(predictions)), records("l", sorted(labels))
    whole = Merge("p", "l")
    whole.add("p", p)
    whole.add("l", lab)
    want = whole.release(never)

    merge = Merge("p", "l")
    taken = {"p": 0, "l": 0}
    out = []
    step = 0
    while taken["p"] < len(p) or taken["l"] < len(lab):
        for topic, source in (("p", p), ("l", lab)):
            size = sizes[step % len(sizes)]
            step += 1
            merge.add(topic, source[taken[topic] : taken[topic] + size])
            taken[topic] = min(taken[topic] + size, len(source))
        remaining = {"p": taken["p"] < len(p), "l": taken["l"] < len(lab)}
        out += merge.release(remaining.__getitem__)
    out += merge.release(never)
    assert out == want
