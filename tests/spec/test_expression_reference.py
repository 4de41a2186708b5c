"""Property: compiled expressions compute exactly what a plain tree-walking interpreter does.

The compiler fuses common shapes into single closures for speed; this checks every shape it
may produce against a brute-force reference on random expressions and random inputs."""

import ast
import math
import operator

from hypothesis import given, settings
from hypothesis import strategies as st

from framework.spec.expr import BOOL, NUM, Binding, Env, InputType, compile_expr

NUMS = ("a", "b", "c")
ENV = Env(inputs={**{f"m.{n}": InputType(NUM) for n in NUMS}, "m.k": InputType(BOOL)},
          params={"p_s": 2.5, "q_s": -1.0})

num_leaf = st.one_of(
    st.sampled_from([f"m.{n}" for n in NUMS] + ["params.p_s", "params.q_s"]),
    st.integers(-5, 5).map(str),
    st.sampled_from(["0.5", "1.5", "3.0"]),
)


def num_expr(children):
    return st.one_of(
        st.tuples(children, st.sampled_from(["+", "-", "*", "/"]), children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        children.map(lambda x: f"(-{x})"),
        st.tuples(st.sampled_from(["min", "max"]), children, children).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
        children.map(lambda x: f"abs({x})"),
        st.tuples(children, children, children).map(lambda t: f"clip({t[0]}, {t[1]}, {t[2]})"),
        children.map(lambda x: f"clip({x}, 0, 1)"),
    )


nums = st.recursive(num_leaf, num_expr, max_leaves=6)
comparison = st.tuples(nums, st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), nums).map(lambda t: f"({t[0]} {t[1]} {t[2]})")
bool_leaf = st.one_of(comparison, st.just("m.k"), st.sampled_from(["true", "false"]))


def bool_expr(children):
    return st.one_of(
        st.lists(children, min_size=2, max_size=6).map(lambda xs: "(" + " and ".join(xs) + ")"),
        st.lists(children, min_size=2, max_size=6).map(lambda xs: "(" + " or ".join(xs) + ")"),
        children.map(lambda x: f"(not {x})"),
    )


bools = st.recursive(bool_leaf, bool_expr, max_leaves=8)
ternary = st.tuples(bools, nums, nums).map(lambda t: f"({t[1]} if {t[0]} else {t[2]})")

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}
_CMP = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
        ast.Eq: operator.eq, ast.NotEq: operator.ne}


def reference(node, env):
    """The obvious interpreter: no folding, no fusing."""
    if isinstance(node, ast.Expression):
        return reference(node.body, env)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return {"true": True, "false": False}[node.id]
    if isinstance(node, ast.Attribute):
        return env[f"{node.value.id}.{node.attr}"]
    if isinstance(node, ast.UnaryOp):
        v = reference(node.operand, env)
        return (not v) if isinstance(node.op, ast.Not) else -v
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            return all(reference(v, env) for v in node.values)
        return any(reference(v, env) for v in node.values)
    if isinstance(node, ast.BinOp):
        x, y = reference(node.left, env), reference(node.right, env)
        if isinstance(node.op, ast.Div):
            if y == 0:
                return math.nan if x == 0 else math.copysign(math.inf, x)
            return x / y
        return _OPS[type(node.op)](x, y)
    if isinstance(node, ast.Compare):
        return _CMP[type(node.ops[0])](reference(node.left, env), reference(node.comparators[0], env))
    if isinstance(node, ast.IfExp):
        return reference(node.body, env) if reference(node.test, env) else reference(node.orelse, env)
    if isinstance(node, ast.Call):
        args = [reference(a, env) for a in node.args]
        if node.func.id == "clip":
            x, lo, hi = args
            return lo if x < lo else hi if x > hi else x
        return {"min": min, "max": max, "abs": abs}[node.func.id](*args)
    raise AssertionError(ast.dump(node))


def same(x, y):
    if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
        return True
    return x == y and type(x) is type(y) or (isinstance(x, (int, float)) and not isinstance(x, bool)
                                             and isinstance(y, (int, float)) and not isinstance(y, bool) and x == y)


# Values that hit the constants exactly too: that is where < and <= differ.
values = st.one_of(st.floats(-10, 10, allow_nan=False), st.integers(-5, 5).map(float),
                   st.sampled_from([0.5, 1.5, 2.5, 3.0, -1.0, math.nan, math.inf, -math.inf]))


@settings(max_examples=400, deadline=None)
@given(text=st.one_of(nums, bools, ternary), a=values, b=values, c=values, k=st.booleans())
def test_compiled_expression_matches_the_reference_interpreter(text, a, b, c, k):
    ns = {"m": {"a": a, "b": b, "c": c, "k": k}}
    env = {"m.a": a, "m.b": b, "m.c": c, "m.k": k, "params.p_s": 2.5, "params.q_s": -1.0}
    try:
        compiled = compile_expr(text, ENV)
    except Exception as exc:  # only load-time refusals of valid-looking text are allowed
        assert "too large" in str(exc) or "exponent" in str(exc), (text, exc)
        return
    got = compiled.bind(Binding(ns))()
    try:
        want = reference(ast.parse(text, mode="eval"), env)
    except (OverflowError, ZeroDivisionError):
        return
    assert same(got, want), (text, got, want)


OPS = ["<", "<=", ">", ">=", "==", "!="]
SHAPES = ["m.a {op} 2.5", "2.5 {op} m.a", "not (m.a {op} 2.5)", "not (2.5 {op} m.a)",
          "(m.a + 1) {op} 3.5", "not ((m.a * 2) {op} 5)", "m.a {op} m.b", "not (m.a {op} params.p_s)"]


def test_every_fused_comparison_shape_at_the_boundary():
    """Exhaustive over operator, shape and the values where a wrong operator would show."""
    for op in OPS:
        for shape in SHAPES:
            text = shape.format(op=op)
            compiled = compile_expr(text, ENV)
            tree = ast.parse(text, mode="eval")
            for a in (2.0, 2.5, 3.0, math.nan, math.inf, -math.inf):
                for b in (2.5, 0.0):
                    ns = {"m": {"a": a, "b": b, "c": 0.0, "k": False}}
                    env = {"m.a": a, "m.b": b, "params.p_s": 2.5}
                    assert compiled.bind(Binding(ns))() == reference(tree, env), (text, a, b)
