import pytest

from ditkit_interfaces import (
    BlockSpec,
    ConfigError,
    DitkitError,
    ForwardPattern,
    NameRegistry,
    TransformerSpec,
    TypeRegistry,
)

H, E = "hidden_states", "encoder_hidden_states"

# (Return_H_First, Return_H_Only, Forward_H_only, In, Out) from cache-dit's table (reference §2.5)
TABLE = {
    0: (True, False, False, (H, E), (H, E)),
    1: (False, False, False, (H, E), (E, H)),
    2: (False, True, False, (H, E), (H,)),
    3: (False, True, True, (H,), (H,)),
    4: (True, False, True, (H,), (H, E)),
    5: (False, False, True, (H,), (E, H)),
}


@pytest.mark.parametrize("number", range(6))
def test_pattern_attributes(number):
    p = ForwardPattern[f"Pattern_{number}"]
    assert (p.Return_H_First, p.Return_H_Only, p.Forward_H_only, p.In, p.Out) == TABLE[number]
    assert p.Supported
    assert p.takes_encoder == (E in p.In)
    assert p.returns_encoder == (E in p.Out)
    assert ForwardPattern.coerce(number) is p
    assert ForwardPattern.coerce(f"Pattern_{number}") is p
    assert ForwardPattern.coerce(str(number)) is p
    assert (
        ForwardPattern.from_outputs(
            hidden_first=p.Return_H_First,
            hidden_only=p.Return_H_Only,
            takes_encoder=p.takes_encoder,
        )
        is p
    )


def test_missing_inputs():
    assert ForwardPattern.Pattern_0.missing_inputs(["hidden_states", "temb"]) == (E,)
    assert ForwardPattern.Pattern_3.missing_inputs(["x"]) == (H,)
    assert ForwardPattern.Pattern_3.missing_inputs([H, E]) == ()


@pytest.mark.parametrize("bad", [6, -1, "Pattern_9", True, 2.0, None])
def test_coerce_rejects(bad):
    with pytest.raises(ValueError, match="forward_pattern"):
        ForwardPattern.coerce(bad)


def test_supported_patterns():
    assert len(ForwardPattern.supported_patterns()) == 6


def test_block_specs():
    spec = TransformerSpec(
        "FluxTransformer2DModel",
        (
            BlockSpec("transformer_blocks", 1),
            BlockSpec("single_transformer_blocks", "Pattern_1", dummy=True),
        ),
        has_separate_cfg=False,
    )
    assert spec.blocks[0].forward_pattern is ForwardPattern.Pattern_1
    assert spec.block_names(include_dummy=False) == ("transformer_blocks",)
    assert spec.forward_patterns() == (ForwardPattern.Pattern_1,)
    with pytest.raises(ConfigError, match="attribute"):
        BlockSpec("not a path", 0)
    with pytest.raises(ConfigError, match="distinct"):
        TransformerSpec("X", (BlockSpec("a", 0), BlockSpec("a", 3)))
    with pytest.raises(ConfigError, match="at least one"):
        TransformerSpec("X", ())


def test_type_registry_mro_and_errors():
    reg: TypeRegistry = TypeRegistry("things")

    class Base:
        pass

    class Child(Base):
        pass

    class Other:
        pass

    reg.register(Base)("base")
    assert reg.lookup(Child()) == "base"
    reg.register(Child)("child")
    assert reg.lookup(Child) == "child"
    assert reg.get(Other) is None
    with pytest.raises(DitkitError, match="Other"):
        reg.lookup(Other())
    with pytest.raises(DitkitError, match="already registered"):
        reg.register(Base)("again")
    reg.register(Base, replace=True)("again")
    assert reg.lookup(Base) == "again" and len(reg) == 2 and Base in reg


def test_name_registry_longest_prefix_wins():
    reg: NameRegistry = NameRegistry("families")
    reg.add("QwenImage", 1)
    reg.add("QwenImageEdit", 2)
    assert reg.match("QwenImageEditPlusPipeline") == 2
    assert reg.match("QwenImagePipeline") == 1
    assert reg.match("FluxPipeline") is None
    assert reg.prefixes() == ["QwenImage", "QwenImageEdit"]
    with pytest.raises(DitkitError):
        reg.add("QwenImage", 3)
