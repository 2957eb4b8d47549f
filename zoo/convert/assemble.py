"""The last step every converter shares: build the model, then load it whole."""

from zoo import registry
from zoo.convert.table import assign
from zoo.heads import BackboneWithHeads

HEAD_LEFT_OUT = "a head: zoo.load(..., with_head=True) loads it"


def build_and_load(family, arguments, overrides, state, table, heads=({}, []),
                   with_head=False, left_out=(), description="checkpoint", keep_initialised=()):
    """(model, LoadReport): the backbone of `family` (plus heads if asked), loaded.

    heads: (BackboneWithHeads arguments, their rules) found in the checkpoint;
    without `with_head` their weights are reported as left out.
    `{i}` in the rules runs over ALBERT's groups, else over layers.
    """
    head_arguments, head_table = heads
    model = registry.families()[family](**{**arguments, **overrides}, name=family)
    table, left_out = list(table), list(left_out)
    if with_head:
        model = BackboneWithHeads(model, name=f"{family}_with_heads", **head_arguments)
        table += head_table
    else:
        left_out += [(rule.source, HEAD_LEFT_OUT) for rule in head_table]
    count = arguments.get("num_groups") or arguments["num_layers"]
    report = assign(model, table, state, count, left_out=left_out, description=description,
                    keep_initialised=keep_initialised)
    return model, report
