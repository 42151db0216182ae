"""The kit's RPC entrypoint on a real broker: a call whose arguments do not fit the method
is refused as nameko refuses it, before any work, with the signature read once."""

import pytest
from nameko.exceptions import IncorrectSignature
from nameko.standalone.rpc import ServiceRpcClient

from servicekit.rpc import rpc


class FrontDesk:
    name = "front_desk"
    noted: list = []

    @rpc
    def note(self, text: str, urgent: bool = False) -> dict:
        """Example: `("late arrival", urgent=True)` -> `{"text": ..., "urgent": true}`."""
        self.noted.append(text)
        return {"text": text, "urgent": urgent}


def test_calls_that_do_not_fit_the_method_are_refused_before_any_work(
    rabbit_config, container_factory
):
    container_factory(FrontDesk).start()
    FrontDesk.noted.clear()

    with ServiceRpcClient("front_desk") as desk:
        assert desk.note("late arrival", urgent=True) == {"text": "late arrival", "urgent": True}
        assert desk.note(text="towels") == {"text": "towels", "urgent": False}
        for wrong in (
            lambda: desk.note(),
            lambda: desk.note("a", False, "b"),
            lambda: desk.note("a", room=7),
        ):
            with pytest.raises(IncorrectSignature):
                wrong()

    assert FrontDesk.noted == ["late arrival", "towels"]
