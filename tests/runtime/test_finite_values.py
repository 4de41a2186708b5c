"""The metrics record's values: ``_finite_values`` against value-by-value ``_finite``."""

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from framework.runtime.pipeline import _finite, _finite_values

VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0]),
    st.integers(),
    st.integers(min_value=10**308, max_value=10**400),  # ints too large for a float
    st.booleans(),
    st.none(),
    st.text(max_size=3),
    st.floats(allow_nan=True, allow_infinity=True).map(np.float64),  # a float subclass
    st.floats(allow_nan=True, allow_infinity=True, width=32).map(np.float32),  # not one
)


def _shape(d: dict) -> list:
    """Keys, types and reprs in order: NaN compares unequal, -0.0 equal to 0.0."""
    return [(k, type(v), repr(v)) for k, v in d.items()]


@given(st.dictionaries(st.text(max_size=4), VALUES, max_size=12))
def test_each_value_is_written_as_finite_writes_it(values):
    before = _shape(values)
    out = _finite_values(values)
    assert _shape(out) == [(k, type(_finite(v)), repr(_finite(v))) for k, v in values.items()]
    assert out is not values and _shape(values) == before  # a copy; the metrics are untouched


def test_non_finite_floats_become_their_repr_and_the_rest_stays():
    out = _finite_values({"a": 1.5, "b": math.nan, "c": -math.inf, "d": 3, "e": "x"})
    assert out == {"a": 1.5, "b": "nan", "c": "-inf", "d": 3, "e": "x"}
