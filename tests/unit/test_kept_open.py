"""`KeptOpen`, the kit's one way of keeping connections open between uses, on stand-ins."""

import itertools

import pytest

from servicekit.connections import KeptOpen


class Recorder:
    def __init__(self):
        self.numbers = itertools.count(1)
        self.closed: list[int] = []
        self.ended_by_server: set[int] = set()

    def kept(self) -> KeptOpen[int]:
        return KeptOpen(
            lambda: next(self.numbers),
            close=self.closed.append,
            gone=lambda n: n in self.ended_by_server,
        )


def test_a_connection_is_used_again_and_two_in_use_at_once_are_two():
    recorder = Recorder()
    kept = recorder.kept()
    with kept.use() as first, kept.use() as second:
        assert (first, second) == (1, 2)
    with kept.use() as again:
        assert again in (1, 2)
    kept.close()
    assert sorted(recorder.closed) == [1, 2]


def test_one_that_failed_in_use_is_closed_and_not_kept():
    recorder = Recorder()
    kept = recorder.kept()
    with pytest.raises(ConnectionError), kept.use():
        raise ConnectionError("the server went away")
    assert recorder.closed == [1]
    with kept.use() as fresh:
        assert fresh == 2


def test_one_its_server_ended_meanwhile_is_closed_before_use():
    recorder = Recorder()
    kept = recorder.kept()
    with kept.use():
        pass
    recorder.ended_by_server.add(1)
    with kept.use() as taken:
        assert taken == 2
    assert recorder.closed == [1]
