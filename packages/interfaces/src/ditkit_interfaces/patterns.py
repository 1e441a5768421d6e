"""``ForwardPattern``: the six input/output contracts a DiT block can have.

A block list is cached as a unit, so the cache must know what each block takes and returns.
cache-dit names six patterns; ditkit keeps their names, member values' meaning and attributes.

| pattern   | block takes                            | block returns                       |
|-----------|----------------------------------------|-------------------------------------|
| Pattern_0 | hidden_states, encoder_hidden_states   | (hidden_states, encoder_hidden_states) |
| Pattern_1 | hidden_states, encoder_hidden_states   | (encoder_hidden_states, hidden_states) |
| Pattern_2 | hidden_states, encoder_hidden_states   | hidden_states                       |
| Pattern_3 | hidden_states                          | hidden_states                       |
| Pattern_4 | hidden_states                          | (hidden_states, encoder_hidden_states) |
| Pattern_5 | hidden_states                          | (encoder_hidden_states, hidden_states) |

Example:
    >>> from ditkit_interfaces.patterns import ForwardPattern
    >>> p = ForwardPattern.Pattern_1
    >>> p.In, p.Out
    (('hidden_states', 'encoder_hidden_states'), ('encoder_hidden_states', 'hidden_states'))
    >>> p.missing_inputs(["hidden_states", "encoder_hidden_states", "temb"])
    ()
    >>> ForwardPattern.from_outputs(hidden_first=False, hidden_only=False, takes_encoder=True)
    <ForwardPattern.Pattern_1: 1>
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import NamedTuple

__all__ = ["ForwardPattern", "PatternSpec"]

_H = "hidden_states"
_E = "encoder_hidden_states"


class PatternSpec(NamedTuple):
    """The attributes of a pattern (cache-dit's tuple order)."""

    Return_H_First: bool
    Return_H_Only: bool
    Forward_H_only: bool
    In: tuple[str, ...]
    Out: tuple[str, ...]
    Supported: bool


_SPECS: dict[int, PatternSpec] = {
    0: PatternSpec(True, False, False, (_H, _E), (_H, _E), True),
    1: PatternSpec(False, False, False, (_H, _E), (_E, _H), True),
    2: PatternSpec(False, True, False, (_H, _E), (_H,), True),
    3: PatternSpec(False, True, True, (_H,), (_H,), True),
    4: PatternSpec(True, False, True, (_H,), (_H, _E), True),
    5: PatternSpec(False, False, True, (_H,), (_E, _H), True),
}


class ForwardPattern(enum.Enum):
    """How a transformer block is called and what it returns (see the module docstring)."""

    Pattern_0 = 0
    Pattern_1 = 1
    Pattern_2 = 2
    Pattern_3 = 3
    Pattern_4 = 4
    Pattern_5 = 5

    # -- cache-dit's attribute names -------------------------------------------------------
    @property
    def spec(self) -> PatternSpec:
        return _SPECS[self.value]

    @property
    def Return_H_First(self) -> bool:
        """The hidden states come first in the returned tuple."""
        return self.spec.Return_H_First

    @property
    def Return_H_Only(self) -> bool:
        """The block returns only the hidden states."""
        return self.spec.Return_H_Only

    @property
    def Forward_H_only(self) -> bool:
        """The block takes only the hidden states as a named tensor input (patterns 3–5)."""
        return self.spec.Forward_H_only

    @property
    def In(self) -> tuple[str, ...]:
        """Names of the tensor inputs the block's forward must accept."""
        return self.spec.In

    @property
    def Out(self) -> tuple[str, ...]:
        """Names of the returned tensors, in order."""
        return self.spec.Out

    @property
    def Supported(self) -> bool:
        return self.spec.Supported

    # -- helpers ---------------------------------------------------------------------------
    @property
    def takes_encoder(self) -> bool:
        """The block receives ``encoder_hidden_states`` as its second positional input."""
        return not self.Forward_H_only

    @property
    def returns_encoder(self) -> bool:
        """The block returns an encoder stream beside the hidden states."""
        return not self.Return_H_Only

    def missing_inputs(self, parameter_names: Iterable[str]) -> tuple[str, ...]:
        """The required input names absent from a forward's parameters (empty when it fits)."""
        names = set(parameter_names)
        return tuple(name for name in self.In if name not in names)

    @classmethod
    def from_outputs(
        cls, *, hidden_first: bool, hidden_only: bool, takes_encoder: bool
    ) -> ForwardPattern:
        """The pattern with the given contract."""
        for member in cls:
            if (
                member.Return_H_Only == hidden_only
                and member.takes_encoder == takes_encoder
                and (hidden_only or member.Return_H_First == hidden_first)
            ):
                return member
        raise ValueError("no forward pattern has that contract")

    @classmethod
    def supported_patterns(cls) -> list[ForwardPattern]:
        return [p for p in cls if p.Supported]

    @classmethod
    def coerce(cls, value: ForwardPattern | int | str) -> ForwardPattern:
        """Accept a member, its number, or a name like ``"Pattern_3"`` / ``"3"``."""
        if isinstance(value, cls):
            return value
        if isinstance(value, int) and not isinstance(value, bool) and value in _SPECS:
            return cls(value)
        if isinstance(value, str):
            text = value.strip()
            if text in cls.__members__:
                return cls[text]
            if text.isdigit() and int(text) in _SPECS:
                return cls(int(text))
        raise ValueError(
            f"forward_pattern={value!r} is invalid: expected a ForwardPattern, 0-5 "
            "or 'Pattern_0'..'Pattern_5'"
        )
