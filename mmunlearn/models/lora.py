"""Where LoRA adapters go: named scopes → module-name patterns.

A scope is one of `LORA_TARGETS` (language model, projector, vision tower, all), several joined
by `+` (`language_model+projector`), or `re:<pattern>`: a regular expression matched against whole
module names (peft's `target_modules` convention). The names cover LLaVA/LLaVA-NeXT
(`vision_tower`, `multi_modal_projector`), Qwen2-VL/2.5-VL (`visual`, `visual.merger`), Idefics3/
SmolVLM (`vision_model`, `connector`) and GPT-2/Llama/OLMo/Qwen2 linear layers.
"""

from __future__ import annotations

import difflib
import re

# Linear (and conv) layer names; `mlp.0`/`mlp.2` are the linear layers of Qwen-VL's merger,
# Sequential(Linear, GELU, Linear).
_LINEAR = r"(q_proj|k_proj|v_proj|o_proj|qkv|proj|out_proj|gate_proj|up_proj|down_proj|fc1|fc2|linear_1|linear_2|c_attn|c_proj|c_fc|mlp\.[02])"
_VISION = r"(vision_tower|vision_model|visual)"
_PROJECTOR = r"(multi_modal_projector|visual\.merger|connector)"
LORA_TARGETS = {
    "language_model": rf"^(?!.*({_VISION}|{_PROJECTOR})).*\.{_LINEAR}$",
    "projector": rf".*{_PROJECTOR}.*\.{_LINEAR}$",
    "vision_tower": rf"^(?!.*{_PROJECTOR}).*{_VISION}.*\.{_LINEAR}$",
    "all": rf".*\.{_LINEAR}$",
}
REGEX_PREFIX = "re:"


def lora_target(scope: str) -> str:
    """The regular expression (for peft's `target_modules`) of a scope; ValueError if invalid."""
    if not isinstance(scope, str):  # e.g. YAML read `re: x` as a mapping
        raise ValueError(f"train.lora_scope={scope!r}: expected a string (quote a regex scope)")
    if scope.startswith(REGEX_PREFIX):
        pattern = scope[len(REGEX_PREFIX) :]
        try:
            re.compile(pattern)
        except re.error as error:
            raise ValueError(f"train.lora_scope={scope!r}: invalid regex ({error})") from None
        if not pattern:
            raise ValueError(f"train.lora_scope={scope!r}: empty regex after 're:'")
        return pattern
    parts = scope.split("+")
    for part in parts:
        if part not in LORA_TARGETS:
            close = difflib.get_close_matches(part, LORA_TARGETS, n=1)
            hint = f" — did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"train.lora_scope={scope!r}: unknown scope {part!r}{hint}; expected one of "
                f"{', '.join(LORA_TARGETS)}, several joined by '+', or 're:<pattern>'"
            )
    return "|".join(f"(?:{LORA_TARGETS[part]})" for part in parts)
