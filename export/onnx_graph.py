"""TensorFlow graph patterns -> the ONNX operators ONNX Runtime runs fused.

tf2onnx converts Keras 3's layer normalization and exact GELU op by op:
its own layer-norm rewriter knows only the older Keras pattern, and it has
no handler for `Erfc`, which `tf.nn.gelu(approximate=False)` uses. These
rewriters (tf2onnx's `custom_rewriter` hook, run on the TensorFlow graph
before conversion) replace

  layer normalization  mean, SquaredDifference, Rsqrt, scale and shift
                       (keras.ops.layer_normalization on TensorFlow)
                       -> LayerNormalization (ONNX opset 17): one kernel
  exact GELU           0.5 * x * erfc(-x / sqrt 2)
                       -> x * 0.5 * (1 + erf(x / sqrt 2)), the pattern ONNX
                       Runtime fuses into its Gelu kernel when it loads

(The tanh GELU needs nothing: tf2onnx's Tanh/Pow graph is one ONNX Runtime
fuses into FastGelu as it is.) Every operator stays in the standard ONNX
domain, so the file runs in any ONNX runtime; ONNX Runtime's own fusions
happen when it loads the model (checked in the graphs it writes out with
`optimized_model_filepath`). A pattern that does not match exactly is left
as it was: slower, not wrong.
"""

import numpy as np
from tf2onnx import utils
from tf2onnx.graph_matcher import GraphMatcher, OpTypePattern

LAYER_NORM_OPSET = 17  # LayerNormalization entered the standard domain at opset 17


def _layer_norm_pattern():
    """Keras 3's layer normalization on the TensorFlow backend:
    out = x * inv + (-mean * inv + beta), inv = rsqrt(var + eps) * gamma.
    (GraphMatcher needs a fresh pattern object, with its own name, for each
    place a node appears; the rewriter checks the repeats are one node.)"""
    def mean(name):
        return OpTypePattern("Mean", name=name, inputs=[
            OpTypePattern("*", name=f"x_{name}"),
            OpTypePattern("Const|ConstV2", name=f"axes_{name}")])

    def inverse(name):
        variance = OpTypePattern("Mean", inputs=[
            OpTypePattern("SquaredDifference", inputs=[
                OpTypePattern("*", name=f"x_{name}"),
                OpTypePattern("StopGradient|Identity", inputs=[mean(f"mean_{name}")])]),
            OpTypePattern("Const|ConstV2", name=f"axes_{name}")])
        return OpTypePattern("Mul", name=name, inputs=[
            OpTypePattern("Rsqrt", inputs=[
                OpTypePattern("AddV2|Add", inputs=[
                    variance, OpTypePattern("Const|ConstV2", name=f"epsilon_{name}")])]),
            OpTypePattern("*", name=f"gamma_{name}")])

    shift = OpTypePattern("AddV2|Add", inputs=[
        OpTypePattern("Mul", inputs=[OpTypePattern("Neg", inputs=[mean("mean")]),
                                     inverse("inverse")]),
        OpTypePattern("*", name="beta")])
    return OpTypePattern("AddV2|Add", name="output", inputs=[
        OpTypePattern("Mul", inputs=[OpTypePattern("*", name="x_scaled"),
                                     inverse("inverse_again")]), shift])


def _constant(match, name):
    return np.asarray(match.get_op(name).get_tensor_value(as_list=True)).reshape(-1)


def _one_layer_norm(g, match):
    """(x, gamma, beta, epsilon) when the match is one layer normalization over
    the last axis with per-feature scale and shift; None otherwise."""
    x = match.get_tensor("x_mean")
    means = {match.get_op(name).name for name in
             ("mean", "mean_inverse", "mean_inverse_again")}
    inputs = {match.get_tensor(name) for name in
              ("x_mean", "x_mean_inverse", "x_mean_inverse_again", "x_inverse",
               "x_inverse_again", "x_scaled")}
    if len(means) != 1 or inputs != {x} or (
            match.get_op("inverse").name != match.get_op("inverse_again").name):
        return None
    rank = g.get_rank(x)
    axes = [_constant(match, name) for name in
            ("axes_mean", "axes_inverse", "axes_mean_inverse")]
    if rank is None or any(len(a) != 1 or a[0] % rank != rank - 1 for a in axes):
        return None
    epsilon = _constant(match, "epsilon_inverse")
    features = (g.get_shape(x) or [None])[-1]
    gamma = _per_feature(g, match.get_tensor("gamma_inverse"), features)
    beta = _per_feature(g, match.get_tensor("beta"), features)
    if epsilon.size != 1 or gamma is None or beta is None:
        return None
    return x, gamma, beta, float(epsilon[0])


def _per_feature(g, tensor, features):
    """`tensor` as the [features] vector LayerNormalization takes, or None.
    Keras reshapes gamma and beta to [1, 1, features] to broadcast them:
    that Reshape's rank-1 input (a weight), or the constant it was folded
    into, flattened."""
    shape = g.get_shape(tensor)
    if shape is None or features is None or features < 0 or list(shape)[-1:] != [features] or any(
            size != 1 for size in shape[:-1]):
        return None
    if len(shape) == 1:
        return tensor
    producer = g.get_node_by_output(tensor)
    if producer is None:
        return None
    if producer.type == "Reshape" and g.get_shape(producer.input[0]) == [features]:
        return producer.input[0]
    if producer.is_const():
        return g.make_const(utils.make_name(producer.name),
                            producer.get_tensor_value(as_list=False).reshape(-1)).output[0]
    return None


def rewrite_layer_normalization(g, ops):
    """Keras layer normalization over the last axis -> ONNX LayerNormalization."""
    if g.opset < LAYER_NORM_OPSET:
        return ops
    matcher = GraphMatcher(_layer_norm_pattern(), allow_reorder=True)
    for match in list(matcher.match_ops(ops)):
        found = _one_layer_norm(g, match)
        if found is None:
            continue
        x, gamma, beta, epsilon = found
        output = match.get_op("output").output[0]
        normalized = g.make_node(
            "LayerNormalization", [x, gamma, beta], attr={"axis": -1, "epsilon": epsilon},
            shapes=[g.get_shape(output)], dtypes=[g.get_dtype(output)],
            op_name_scope=match.get_op("output").name)
        ops.append(normalized)
        g.replace_all_inputs(output, normalized.output[0], ops=ops)
    return ops


def _exact_gelu_pattern():
    """tf.nn.gelu(x, approximate=False): (0.5 * x) * erfc((-x) * (1 / sqrt 2))."""
    return OpTypePattern("Mul", name="output", inputs=[
        OpTypePattern("Mul", inputs=[OpTypePattern("Const|ConstV2", name="half"),
                                     OpTypePattern("*", name="x")]),
        OpTypePattern("Erfc", inputs=[
            OpTypePattern("Mul", inputs=[OpTypePattern("Neg", inputs=[
                OpTypePattern("*", name="x_again")]),
                OpTypePattern("Const|ConstV2", name="scale")])])])


def rewrite_exact_gelu(g, ops):
    """tf.nn.gelu's exact form -> the erf pattern ONNX Runtime fuses into Gelu."""
    matcher = GraphMatcher(_exact_gelu_pattern(), allow_reorder=True)
    for match in list(matcher.match_ops(ops)):
        x = match.get_tensor("x")
        half = np.asarray(match.get_op("half").get_tensor_value(as_list=True))
        scale = np.asarray(match.get_op("scale").get_tensor_value(as_list=True))
        if (match.get_tensor("x_again") != x or half.size != 1 or scale.size != 1
                or not np.isclose(half.item(), 0.5) or not np.isclose(scale.item(), 0.5 ** 0.5)):
            continue
        output = match.get_op("output")
        dtype = g.get_dtype(x)

        def constant(name, value):
            return g.make_const(utils.make_name(f"{output.name}/{name}"), np.array(
                value, utils.map_onnx_to_numpy_type(dtype))).output[0]

        # Div by sqrt 2, the form ONNX Runtime's GeluFusion is written for.
        scaled = g.make_node("Div", [x, constant("sqrt2", 2.0 ** 0.5)]).output[0]
        erf = g.make_node("Erf", [scaled]).output[0]
        one_plus = g.make_node("Add", [erf, constant("one", 1.0)]).output[0]
        times_x = g.make_node("Mul", [x, one_plus]).output[0]
        gelu = g.make_node("Mul", [times_x, constant("half", 0.5)],
                           shapes=[g.get_shape(output.output[0])], dtypes=[dtype])
        ops.append(gelu)
        g.replace_all_inputs(output.output[0], gelu.output[0], ops=ops)
    return ops


def erfc(ctx, node, name, args):
    """tf2onnx handler for a lone Erfc (outside the GELU pattern): 1 - erf(x)."""
    del name, args
    numpy_dtype = utils.map_onnx_to_numpy_type(ctx.get_dtype(node.input[0]))
    node.type = "Erf"
    one = ctx.make_const(utils.make_name(f"{node.name}/one"), np.array(1.0, numpy_dtype)).output[0]
    complement = ctx.insert_new_node_on_output("Sub", node.output[0], name=node.name + "/sub")
    ctx.replace_inputs(complement, [one, node.output[0]])
    return complement


REWRITERS = [rewrite_layer_normalization, rewrite_exact_gelu]
OP_HANDLERS = {"Erfc": (erfc, [])}
