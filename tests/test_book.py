"""pglib.book: values glued into the prose, in the format myst-nb reads back."""

from unittest import mock

import numpy as np
import pytest
from myst_nb.core.variables import format_plain_text

from pglib import check_claim, glue
from pglib.book import GLUE_MIME_PREFIX


def _glued(name: str, text: str) -> tuple[dict, dict]:
    with mock.patch("pglib.book.display") as display:
        glue(name, text)
    ((bundle,), kwargs) = display.call_args
    assert kwargs["raw"] is True
    return bundle, kwargs["metadata"]


@pytest.mark.parametrize("text", ["46,340", "0.5", "(2 of 5 seeds)", "it's 3"])
def test_myst_nb_pastes_exactly_the_glued_text(text: str) -> None:
    bundle, metadata = _glued("median_steps", text)
    assert metadata == {"scrapbook": {"name": "median_steps", "mime_prefix": GLUE_MIME_PREFIX}}
    (key,) = bundle
    assert key == GLUE_MIME_PREFIX + "text/plain"  # hidden under a kernel, found by the build
    assert format_plain_text(bundle[key], "") == text  # what {glue:text}`median_steps` shows


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("two words", "1", "name must be an identifier"),
        ("", "1", "name must be an identifier"),
        (3, "1", "name must be an identifier"),
        ("steps", 46340, "text must be a non-empty string"),
        ("steps", "  ", "text must be a non-empty string"),
    ],
)
def test_bad_names_and_texts_are_refused(name: object, text: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        glue(name, text)


def test_a_claim_that_holds_passes_and_one_that_fails_says_both_sides() -> None:
    check_claim("every seed reaches 475", True, "steps to target [1, 2]")
    check_claim("numpy verdicts count", np.all(np.array([1, 2]) > 0), "[1, 2]")
    with pytest.raises(AssertionError) as failure:
        check_claim("every seed reaches 475", False, "steps to target [1, None]")
    assert str(failure.value) == (
        "The text claims: every seed reaches 475. Measured here: steps to target [1, None]."
    )


@pytest.mark.parametrize(
    ("claim", "holds", "measured", "message"),
    [
        ("", True, "x", "claim must be a non-empty sentence"),
        ("c", True, "", "measured must be a non-empty string"),
        ("c", 1, "x", "holds must be a bool"),
        ("c", "no", "x", "holds must be a bool"),
    ],
)
def test_claims_need_a_sentence_a_verdict_and_a_measurement(
    claim: object, holds: object, measured: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        check_claim(claim, holds, measured)
