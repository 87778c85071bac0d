import pytest
import torch

from mmunlearn.teachers.visual_noise import VisualNoise

BOUNDS = (
    torch.tensor([-1.0, -2.0, -1.5]).view(3, 1, 1),
    torch.tensor([1.0, 2.0, 1.5]).view(3, 1, 1),
)


@pytest.fixture()
def pixels():
    return torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize(
    "noise", [VisualNoise("gaussian", std=0.0), VisualNoise("diffusion", step=0)]
)
def test_zero_strength_is_the_identity(noise, pixels):
    assert torch.equal(noise.apply(pixels, ["a", "b"], BOUNDS), pixels)


@pytest.mark.parametrize("kind", ["gaussian", "diffusion", "replace"])
def test_noise_is_seeded_per_example(kind, pixels):
    noise = VisualNoise(kind)
    first = noise.apply(pixels, ["a", "b"], BOUNDS)
    assert torch.equal(first, noise.apply(pixels, ["a", "b"], BOUNDS))
    assert not torch.equal(first, VisualNoise(kind, seed=1).apply(pixels, ["a", "b"], BOUNDS))
    assert not torch.equal(first, noise.apply(pixels, ["a", "b"], BOUNDS, draw=1))
    swapped = noise.apply(pixels.flip(0), ["b", "a"], BOUNDS)
    assert torch.equal(swapped.flip(0), first)  # an image's noise depends on its key, not its row


def test_replace_stays_in_the_valid_range_and_ignores_the_image(pixels):
    noised = VisualNoise("replace").apply(pixels, ["a", "b"], BOUNDS)
    low, high = BOUNDS
    assert ((noised >= low) & (noised <= high)).all()
    assert torch.equal(noised, VisualNoise("replace").apply(pixels * 0, ["a", "b"], BOUNDS))


def test_diffusion_late_step_is_mostly_noise():
    assert VisualNoise("diffusion", step=1000).alpha_bar() < 1e-3
    assert VisualNoise("diffusion", step=1).alpha_bar() == pytest.approx(1 - 1e-4)


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="noise kind='blur'"):
        VisualNoise("blur")
    with pytest.raises(ValueError, match="std=-1"):
        VisualNoise("gaussian", std=-1)


def test_seed_key_is_the_example_id_or_its_image():
    from mmunlearn.data.example import Example

    ex = Example("q1", "ann", "forget", "Who?", "Ann", image="faces/ann.png")
    assert VisualNoise().seed_key(ex) == "q1"
    assert VisualNoise(seed_by="image").seed_key(ex) == "faces/ann.png"
