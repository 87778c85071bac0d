"""Where LoRA adapters go: named scopes → module-name patterns (language model, projector,
vision tower). Tested on LLaVA-style models; the linear-layer names also cover GPT-2/Llama."""

_LINEAR = r"(q_proj|k_proj|v_proj|o_proj|out_proj|gate_proj|up_proj|down_proj|fc1|fc2|linear_1|linear_2|c_attn|c_proj|c_fc)"
LORA_TARGETS = {
    "language_model": rf"^(?!.*(vision_tower|visual|vision_model|multi_modal_projector)).*\.{_LINEAR}$",
    "projector": rf".*multi_modal_projector.*\.{_LINEAR}$",
    "vision_tower": rf".*(vision_tower|vision_model).*\.{_LINEAR}$",
    "all": rf".*\.{_LINEAR}$",
}
