"""Where LoRA adapters go: named scopes → module-name patterns.

A scope is one of `LORA_TARGETS` (language model, projector, vision tower, all), several joined
by `+` (`language_model+projector`), or `re:<pattern>`: a regular expression matched against whole
module names (peft's `target_modules` convention). The same scopes say which parameters train in
full (`train.full_scope`, `train_in_full`): a scope's whole modules, norms and embeddings
included, where LoRA takes only their linear layers. The names cover LLaVA/LLaVA-NeXT
(`vision_tower`, `multi_modal_projector`), Qwen2-VL/2.5-VL (`visual`, `visual.merger`), Idefics3/
SmolVLM (`vision_model`, `connector`) and GPT-2/Llama/OLMo/Qwen2 linear layers.
"""

from __future__ import annotations

import difflib
import re

import torch

# Linear (and conv) layer names; `mlp.0`/`mlp.2` are the linear layers of Qwen-VL's merger,
# Sequential(Linear, GELU, Linear).
_LINEAR = r"(q_proj|k_proj|v_proj|o_proj|qkv|proj|out_proj|gate_proj|up_proj|down_proj|fc1|fc2|linear_1|linear_2|c_attn|c_proj|c_fc|mlp\.[02])"
_VISION = r"(vision_tower|vision_model|visual)"
_PROJECTOR = r"(multi_modal_projector|visual\.merger|connector)"
# scope -> the start of the names inside it (a module name or parameter name continues it)
_SCOPES = {
    "language_model": rf"^(?!.*({_VISION}|{_PROJECTOR})).*",
    "projector": rf".*{_PROJECTOR}",
    "vision_tower": rf"^(?!.*{_PROJECTOR}).*{_VISION}",
    "all": ".*",
}
LORA_TARGETS = {name: rf"{start}.*\.{_LINEAR}$" for name, start in _SCOPES.items()}
REGEX_PREFIX = "re:"


def _scope_regex(scope: str, setting: str, patterns: dict[str, str]) -> str:
    if not isinstance(scope, str):  # e.g. YAML read `re: x` as a mapping
        raise ValueError(f"{setting}={scope!r}: expected a string (quote a regex scope)")
    if scope.startswith(REGEX_PREFIX):
        pattern = scope[len(REGEX_PREFIX) :]
        try:
            re.compile(pattern)
        except re.error as error:
            raise ValueError(f"{setting}={scope!r}: invalid regex ({error})") from None
        if not pattern:
            raise ValueError(f"{setting}={scope!r}: empty regex after 're:'")
        return pattern
    parts = scope.split("+")
    for part in parts:
        if part not in patterns:
            close = difflib.get_close_matches(part, patterns, n=1)
            hint = f" — did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"{setting}={scope!r}: unknown scope {part!r}{hint}; expected one of "
                f"{', '.join(patterns)}, several joined by '+', or 're:<pattern>'"
            )
    return "|".join(f"(?:{patterns[part]})" for part in parts)


def lora_target(scope: str) -> str:
    """The regular expression (for peft's `target_modules`) of a scope; ValueError if invalid."""
    return _scope_regex(scope, "train.lora_scope", LORA_TARGETS)


def full_scope_parameters(scope: str) -> str:
    """The regular expression of the parameter names a scope trains in full (`re:` patterns
    match whole parameter names); ValueError if invalid."""
    parameters = {name: rf"{start}\..+" for name, start in _SCOPES.items()}
    return _scope_regex(scope, "train.full_scope", parameters)


def train_in_full(model: torch.nn.Module, scope: str, lora: bool) -> list[str]:
    """Make the parameters in `scope` trainable and freeze the others, LoRA adapters excepted
    (with `lora`, the base weights are already frozen and the adapters stay trainable).
    Returns the names made trainable; ValueError if the scope names no parameter."""
    pattern = re.compile(full_scope_parameters(scope))
    chosen = []
    for name, parameter in model.named_parameters():
        inside = pattern.fullmatch(name) is not None and ".lora_" not in name
        if inside:
            chosen.append(name)
        if inside or not (lora and ".lora_" in name):
            parameter.requires_grad_(inside)
    if not chosen:
        raise ValueError(f"train.full_scope={scope!r} matches no parameter of this model")
    return chosen
