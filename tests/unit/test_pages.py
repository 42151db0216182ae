import pytest

from servicekit import errors
from servicekit.pages import decode_cursor, encode_cursor, page


def test_a_cursor_gives_back_the_key_it_was_made_from():
    assert decode_cursor(encode_cursor(41)) == 41
    assert decode_cursor(encode_cursor(["2026-11-23", 7])) == ["2026-11-23", 7]
    assert decode_cursor(None) is None


@pytest.mark.parametrize("bad", ["%%%", "bm90IGpzb24", encode_cursor({"a": 1})])
def test_a_cursor_the_list_did_not_give_is_a_400_naming_it(bad):
    with pytest.raises(errors.ValidationFailed) as caught:
        decode_cursor(bad)
    assert caught.value.details == {"cursor": ["not a cursor this list gave"]}


def test_a_cursor_of_the_wrong_kind_is_refused():
    with pytest.raises(errors.ValidationFailed):
        decode_cursor(encode_cursor("text"), int)


def test_a_page_points_to_the_next_only_when_there_is_more():
    rows = list(range(1, 5))
    first = page(rows, 3, key=lambda r: r, dump=lambda r: {"id": r})
    assert first["items"] == [{"id": 1}, {"id": 2}, {"id": 3}]
    assert decode_cursor(first["next"]) == 3
    last = page(rows[3:], 3, key=lambda r: r, dump=lambda r: {"id": r})
    assert last == {"items": [{"id": 4}], "next": None}
