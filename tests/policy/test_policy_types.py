"""The supported policy types are listed once (execlave.policy.schema.RULE_MODELS); the
discriminated union, the loader's messages and the engine's compilers agree with it."""

from typing import get_args

from execlave.policy import engine, schema


def test_the_union_of_policy_shapes_is_the_list():
    shapes = get_args(get_args(schema.AnyPolicy)[0])
    by_type = {get_args(shape.model_fields["policy_type"].annotation)[0]: shape for shape in shapes}
    assert tuple(by_type) == schema.POLICY_TYPES == tuple(schema.RULE_MODELS)
    for policy_type, shape in by_type.items():
        assert shape.model_fields["rule"].annotation is schema.RULE_MODELS[policy_type]


def test_the_engine_compiles_every_listed_type():
    assert set(engine._COMPILERS) == set(schema.POLICY_TYPES)
