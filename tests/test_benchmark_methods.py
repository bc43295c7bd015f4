"""The benchmark scripts' method syntax ``NAME[:OPTION]...``."""

from __future__ import annotations

import pytest

from stereo.bench.specs import MethodSpec, parse_method


def test_method_options_combine():
    assert parse_method("zncc") == MethodSpec("zncc")
    spec = parse_method("l2net.castle-fixed-s1:wta:flat:bilinear")
    assert spec == MethodSpec("l2net.castle-fixed-s1", "wta", None, False, False)
    assert parse_method("zncc,l2net.castle-fixed:0.4").smoothness == 0.4
    assert parse_method("zncc").precision == "auto"
    assert parse_method("l2net.castle-fixed-s1:float32:1.6").precision == "float32"
    assert not parse_method("zncc:nosub").sublabel and parse_method("zncc").sublabel


def test_unknown_method_option_exits_with_one_line():
    expected = "not wta, flat, bilinear, float32, bfloat16, nosub or a λ"
    with pytest.raises(SystemExit, match=expected):
        parse_method("zncc:fast")
