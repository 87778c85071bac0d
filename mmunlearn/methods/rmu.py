"""RMU, representation misdirection for unlearning (Li et al., "The WMDP Benchmark", arXiv
2403.03218): at one layer ℓ, steer the student's hidden states on forget toward a fixed random
direction c·u and keep them on retain at the frozen base's,

    L = mean_t (1/H)‖h_ℓ(t) − c·u‖² (forget) + α · mean_t (1/H)‖h_ℓ(t) − h_ℓ^base(t)‖² (retain).

α is the run's `retain_weight` (the paper: 1200 for Zephyr-7B); c is `loss.steering_coeff`.
ℓ is the method's: `rmu` reads layer 1, which every model has (the tiny test models have one);
the paper's ℓ = 7 of Zephyr-7B is `register_method(rmu_method("rmu_l7", 7))`. The paper
updates only layers ℓ−2..ℓ's MLP weights; here the run's trainable scope applies
(`train.lora_scope=re:<pattern>` restricts it).
"""

from __future__ import annotations

from mmunlearn.methods.spec import MethodSpec, TermSpec, register_method

RMU_LAYER = 1


def rmu_method(name: str = "rmu", layer: int = RMU_LAYER) -> MethodSpec:
    """RMU at `layer` (`hidden_states[layer]` in transformers' numbering: 0 the embeddings)."""
    return MethodSpec(
        name,
        f"steer layer {layer}'s hidden states on forget to c*u (a fixed random unit u); "
        "MSE to the base's at that layer on retain",
        "Li et al., WMDP, arXiv 2403.03218 (RMU)",
        terms=(
            TermSpec("forget", "labels", "rmu_steer", tuned=True, layer=layer),
            TermSpec(
                "retain",
                {"name": "base_hidden", "layer": layer},
                "hidden_mse",
                weight="retain",
                layer=layer,
            ),
        ),
    )


register_method(rmu_method())
