"""Scripts the hosts share: what the stand-in model does, independent of how a host spells our tools."""

from __future__ import annotations

from tests.fakes.model_endpoint import Turn, handle_in

COUNTED = "alpha\nbeta\ngamma\n"  # five a's


def load_then_count() -> list[Turn]:
    """load_context of a text, then exec_code in the session whose handle the load returned, then the answer."""
    return [
        Turn.call("load_context", {"text": COUNTED}),
        Turn.call("exec_code", lambda seen: {"code": "print(context.count('a'))",
                                             "session": handle_in(seen.last("load_context").body)}),
        Turn("5"),
    ]
