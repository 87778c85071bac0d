"""Cartoon portraits of the synthetic identities, drawn with PIL from a handful of traits."""

from __future__ import annotations

import random
from dataclasses import dataclass, fields

from PIL import Image, ImageDraw, ImageEnhance

RGB = tuple[int, int, int]

BACKGROUNDS: dict[str, RGB] = {
    "sky": (135, 190, 235),
    "mint": (170, 225, 190),
    "peach": (250, 205, 170),
    "lavender": (200, 180, 235),
    "lemon": (245, 235, 140),
    "rose": (240, 170, 190),
    "slate": (120, 135, 150),
    "sand": (215, 195, 150),
    "teal": (70, 160, 160),
    "white": (245, 245, 245),
}
SKINS: dict[str, RGB] = {
    "pale": (255, 224, 200),
    "light": (240, 200, 160),
    "tan": (205, 150, 105),
    "brown": (150, 100, 65),
    "dark": (95, 60, 40),
}
HAIR_STYLES = ("flat", "long", "spiky", "bald", "bun")
HAIR_COLOURS: dict[str, RGB] = {
    "black": (25, 25, 25),
    "brown": (105, 65, 30),
    "blond": (235, 200, 90),
    "red": (190, 60, 25),
    "grey": (160, 160, 160),
    "blue": (40, 80, 210),
    "green": (40, 150, 60),
    "pink": (240, 100, 180),
}
EYE_COLOURS: dict[str, RGB] = {
    "brown": (90, 50, 20),
    "blue": (30, 90, 200),
    "green": (30, 140, 60),
    "grey": (90, 90, 100),
}
EYE_SIZES: dict[str, int] = {"small": 2, "medium": 3, "large": 4}  # iris radius at size 64
MOUTHS = ("smile", "flat", "open")
ACCESSORIES = ("none", "glasses", "hat")
SHIRTS: dict[str, RGB] = {
    "red": (200, 40, 40),
    "orange": (240, 140, 30),
    "navy": (30, 40, 110),
    "olive": (110, 120, 40),
    "purple": (120, 50, 150),
    "black": (30, 30, 30),
}

# Every trait's allowed values, in field order; the one source for drawing and validating.
_CHOICES: dict[str, tuple[str, ...]] = {
    "background": tuple(BACKGROUNDS),
    "skin": tuple(SKINS),
    "hair_style": HAIR_STYLES,
    "hair_colour": tuple(HAIR_COLOURS),
    "eye_colour": tuple(EYE_COLOURS),
    "eye_size": tuple(EYE_SIZES),
    "mouth": MOUTHS,
    "accessory": ACCESSORIES,
    "shirt": tuple(SHIRTS),
}


@dataclass(frozen=True)
class PortraitTraits:
    """What a portrait looks like; every field is a name from the palettes above."""

    background: str
    skin: str
    hair_style: str
    hair_colour: str
    eye_colour: str
    eye_size: str
    mouth: str
    accessory: str
    shirt: str

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value not in _CHOICES[f.name]:
                raise ValueError(
                    f"PortraitTraits: {f.name}={value!r}; expected one of {_CHOICES[f.name]}"
                )

    @property
    def identity_key(self) -> tuple[str, str, str, str]:
        """The traits that must differ between any two people of one world."""
        return (self.hair_style, self.hair_colour, self.background, self.accessory)


def draw_traits(rng: random.Random) -> PortraitTraits:
    return PortraitTraits(**{name: rng.choice(values) for name, values in _CHOICES.items()})


def draw_portrait(traits: PortraitTraits, size: int = 64) -> Image.Image:
    """A front-facing cartoon face on a plain background, drawn on a 64-unit grid scaled to
    `size` pixels."""
    if size < 16:
        raise ValueError(f"draw_portrait: size={size}; expected at least 16 pixels")
    image = Image.new("RGB", (size, size), BACKGROUNDS[traits.background])
    draw = ImageDraw.Draw(image)
    k = size / 64

    def box(x0: float, y0: float, x1: float, y1: float) -> list[float]:
        return [x0 * k, y0 * k, x1 * k, y1 * k]

    skin, hair = SKINS[traits.skin], HAIR_COLOURS[traits.hair_colour]
    draw.ellipse(box(10, 50, 54, 80), fill=SHIRTS[traits.shirt])
    draw.rectangle(box(27, 44, 37, 54), fill=skin)
    if traits.hair_style == "long":
        draw.rectangle(box(14, 14, 50, 54), fill=hair)
    elif traits.hair_style == "bun":
        draw.ellipse(box(24, 2, 40, 18), fill=hair)
    draw.ellipse(box(16, 12, 48, 50), fill=skin)
    if traits.hair_style in ("flat", "long", "bun"):
        draw.chord(box(15, 10, 49, 38), 180, 360, fill=hair)
    elif traits.hair_style == "spiky":
        for x in range(16, 48, 8):
            draw.polygon([(x * k, 22 * k), ((x + 4) * k, 4 * k), ((x + 8) * k, 22 * k)], fill=hair)
    else:  # bald: side tufts keep the hair colour visible
        draw.rectangle(box(14, 24, 18, 34), fill=hair)
        draw.rectangle(box(46, 24, 50, 34), fill=hair)

    radius = EYE_SIZES[traits.eye_size]
    for cx in (26, 38):
        draw.ellipse(
            box(cx - radius - 1, 29 - radius - 1, cx + radius + 1, 29 + radius + 1), "white"
        )
        draw.ellipse(
            box(cx - radius, 29 - radius, cx + radius, 29 + radius), EYE_COLOURS[traits.eye_colour]
        )
    mouth_colour = (120, 30, 30)
    if traits.mouth == "smile":
        draw.arc(box(26, 34, 38, 44), 20, 160, fill=mouth_colour, width=max(1, round(k * 2)))
    elif traits.mouth == "flat":
        draw.line(box(27, 41, 37, 41), fill=mouth_colour, width=max(1, round(k * 2)))
    else:
        draw.ellipse(box(28, 38, 36, 45), fill=mouth_colour)

    if traits.accessory == "glasses":
        for cx in (26, 38):
            draw.rectangle(
                box(cx - 5, 25, cx + 5, 33), outline=(20, 20, 20), width=max(1, round(k))
            )
        draw.line(box(31, 28, 33, 28), fill=(20, 20, 20), width=max(1, round(k)))
    elif traits.accessory == "hat":
        draw.rectangle(box(20, 2, 44, 16), fill=(60, 40, 30))
        draw.rectangle(box(12, 14, 52, 19), fill=(60, 40, 30))
    return image


def transform_portrait(image: Image.Image, seed: int) -> Image.Image:
    """The test-role view of a portrait: mirrored, shifted by at most 4 pixels (the uncovered
    strip takes the background colour of the corner) and made 0.85-1.15x as bright."""
    rng = random.Random(seed)
    mirrored = image.convert("RGB").transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    dx, dy = rng.randint(-4, 4), rng.randint(-4, 4)
    shifted = Image.new("RGB", mirrored.size, mirrored.getpixel((0, 0)))
    shifted.paste(mirrored, (dx, dy))
    return ImageEnhance.Brightness(shifted).enhance(rng.uniform(0.85, 1.15))
