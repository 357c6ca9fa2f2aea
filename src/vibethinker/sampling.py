"""How a stage samples: one settings model, the SPEC 3 defaults written here once.

Every stage that samples (evaluation, RL rollouts and validation, Pass@K probing, the curriculum's difficulty
rollouts, the distillation harvest) holds a nested ``sampling:`` of this type. A stage whose protocol differs (RL
rollouts sample the untruncated distribution, SPEC 2.3) derives a subclass with other defaults through
:func:`sampling_with_defaults`, so the fields, their checks and their help stay in one place.

Configs holding ``sampling`` also take its fields flat, as shorthand: ``temperature: 0.6`` in a recipe means
``sampling: {temperature: 0.6}``, and ``config.temperature`` reads ``config.sampling.temperature``.

Seeds: a stage seed left unset in a recipe takes the recipe's ``seed`` (see :func:`vibethinker.recipe.fill_seeds`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator
from pydantic.fields import FieldInfo

if TYPE_CHECKING:
    from vibethinker.generate.types import SamplingParams


class SamplingSettings(BaseModel):
    """Sampling of one generation call; defaults are the evaluation protocol's (SPEC 3)."""

    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(1.0, ge=0, description="Sampling temperature; SPEC 3: 1.0. 0 = greedy decoding.")
    top_p: float = Field(0.95, gt=0, le=1, description="Nucleus cut; SPEC 3: 0.95.")
    top_k: int = Field(0, ge=0, description="Top-k cut; 0 = off (SPEC 3).")
    max_new_tokens: int = Field(512, gt=0, description=(
        "Generation budget per response; SPEC 3 evaluates at the model's full window, capped low here for the "
        "tiny CPU models *(our default)*."))
    n: int = Field(1, gt=0, description="Samples per prompt.")
    seed: int | None = Field(None, description=(
        "Sampling seed; the same seed and settings give the same samples. In a recipe an unset seed takes the "
        "recipe's seed."))
    max_model_len: int | None = Field(None, ge=2, description=(
        "Longest prompt + response the native engine holds (EngineConfig.max_model_len); a response reaching it "
        "ends with finish_reason 'length'. None: the model's window (max_position_embeddings, or "
        "original_max_position_embeddings * factor under YaRN). A recipe refuses a value above the window, and a "
        "max_new_tokens + 1 above it *(our default: None)*."))

    def params(self, **overrides: Any) -> SamplingParams:
        """The backend-facing :class:`~vibethinker.generate.types.SamplingParams` (imported here, not at module
        level: validating a recipe must not load transformers). ``max_model_len`` sizes the engine, not a call."""
        from vibethinker.generate.types import SamplingParams

        return SamplingParams(**{**self.model_dump(exclude={"max_model_len"}), **overrides})


def sampling_with_defaults(name: str, doc: str, **defaults: Any) -> type[SamplingSettings]:
    """A :class:`SamplingSettings` subclass whose listed fields default differently; each value is ``default`` or
    ``(default, description)`` or ``(default, description, {constraint: value})`` (e.g. ``{"ge": 2}``: a group
    needs two samples). Fields keep their checks; a subclass instance is a ``SamplingSettings``."""
    fields: dict[str, Any] = {}
    for field_name, value in defaults.items():
        base = SamplingSettings.model_fields[field_name]
        default, description, constraints = (*value, {})[:3] if isinstance(value, tuple) else (
            value, base.description, {})
        info = FieldInfo.merge_field_infos(base, Field(default, description=description, **constraints))
        fields[field_name] = (base.annotation, info)
    model = create_model(name, __base__=SamplingSettings, __doc__=doc, __module__=__name__, **fields)
    return model


def _from_owner(name: str):
    return property(lambda self: getattr(self.sampling, name), doc=f"``sampling.{name}``")


class SamplingOwner(BaseModel):
    """Base of the configs that hold ``sampling``: folds flat sampling keys into it and reads them back.

    ``sampling_aliases`` maps a config's own name for a sampling field to it (RL calls ``n`` the group size G);
    each alias is also a read-only attribute.
    """

    sampling_aliases: ClassVar[dict[str, str]] = {}

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        for alias, target in cls.sampling_aliases.items():
            setattr(cls, alias, _from_owner(target))

    @classmethod
    def _flat_keys(cls, mapping: dict[str, Any]) -> dict[str, str]:
        """The keys of ``mapping`` that are flat sampling keys, each with the ``sampling`` field it stands for."""
        names = {**{f: f for f in SamplingSettings.model_fields}, **cls.sampling_aliases}
        return {key: names[key] for key in mapping if key in names and key not in cls.model_fields}

    @model_validator(mode="before")
    @classmethod
    def _fold_flat_sampling(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        flat = cls._flat_keys(data)
        nested = data.get("sampling")
        if not flat and not isinstance(nested, BaseModel):
            return data
        if isinstance(nested, BaseModel):  # another SamplingSettings class: keep only what was set on it
            nested = nested.model_dump(exclude_unset=True)
        nested = dict(nested or {})
        for key, target in flat.items():
            if target in nested and nested[target] != data[key]:
                raise ValueError(f"'{key}' is given twice, flat ({data[key]!r}) and as sampling.{target} "
                                 f"({nested[target]!r}); keep one")
            nested[target] = data[key]
        return {**{k: v for k, v in data.items() if k not in flat}, "sampling": nested}

    temperature = _from_owner("temperature")
    top_p = _from_owner("top_p")
    top_k = _from_owner("top_k")
    max_new_tokens = _from_owner("max_new_tokens")
    n = _from_owner("n")
    seed = _from_owner("seed")
    max_model_len = _from_owner("max_model_len")

    def sampling_params(self, **overrides: Any) -> SamplingParams:
        return self.sampling.params(**overrides)

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False):
        """``model_copy`` that also takes flat sampling keys: ``update={"seed": 4}`` changes ``sampling.seed``."""
        flat = self._flat_keys(update or {})
        if flat:
            base = update.get("sampling", self.sampling)
            changes = {target: update[key] for key, target in flat.items()}
            update = {k: v for k, v in update.items() if k not in flat}
            update["sampling"] = type(base).model_validate({**base.model_dump(exclude_unset=True), **changes})
        return super().model_copy(update=update, deep=deep)


__all__ = ["SamplingOwner", "SamplingSettings", "sampling_with_defaults"]
