"""Open-vocabulary colour words against the colours measured on a garment region.

    names = ColourNames.shipped()                 # 949 xkcd survey names + 148 CSS names
    lab = names.lab("burgundy")                   # (3,) CIELAB (D65)
    pal = palette(region_rgb)                     # a region's main colours with their shares
    s = colour_score(pal, lab)                    # in [0, 1]: how well the word fits the region

Colours are compared in CIELAB with CIEDE2000 (Sharma, Wu & Dalal 2005; textiles weights: lightness
counts half, since shade and exposure change lightness far more than hue). The formula is written
out here in numpy: colour-science, which has it, replaces a missing SciPy with a stand-in module at
import, which breaks transformers' import in the same process.
A region is a small palette (k-means in Lab: its main colours and the share of the region each
covers), not one median: a red-and-navy jacket keeps its red. No ROS, no model.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

COLOUR_TABLE = Path(__file__).resolve().parent / "data" / "colour_names.tsv"

PALETTE_K = 3               # main colours per region
PALETTE_MAX_PIXELS = 1500   # pixels sampled per region (deterministic stride)
PALETTE_MIN_PIXELS = 20     # fewer: no palette (the region was not seen)
MIN_SHARE = 0.12            # a palette colour covering less of the region does not name it
DE_SCALE = 16.0             # CIEDE2000 (textiles) units at which a colour's fit falls to exp(-1)


# A picture whose hues do not vary (the std of CIELAB a* and b* over the image under this) is black
# and white (or one tint, sepia): the 1906 film frames of the diagnosis set measure 0.6-1.0, the
# greyscale basketball photo 0; colour photos and videos 3.8-24 in the larger of the two.
MONOCHROME_AB_STD = 2.5
ACHROMATIC_CHROMA = 12.0  # a named colour with less CIELAB chroma than this is a grey level (black, white, grey)
# Basic colour terms (Berlin & Kay's eleven): every name belongs to one, by its last basic word ("cobalt
# blue", "grass green") or an everyday synonym, else by the nearest of the eleven (CIEDE2000). A measured
# colour's category is the vote of its CATEGORY_VOTERS nearest names: "azure, water blue, cerulean..."
# say blue where the one nearest name ("azure") would not match "cobalt blue" by distance.
BASIC_COLOURS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white", "grey")
BASIC_SYNONYMS = {"gray": "grey", "violet": "purple", "navy": "blue", "maroon": "red", "beige": "brown",
                  "tan": "brown", "magenta": "pink", "cyan": "blue", "aqua": "blue", "teal": "blue", "olive": "green",
                  "lime": "green", "khaki": "brown", "cream": "white", "lilac": "purple", "lavender": "purple",
                  "turquoise": "blue", "indigo": "blue", "gold": "yellow", "silver": "grey", "burgundy": "red",
                  "crimson": "red", "scarlet": "red", "denim": "blue"}
CATEGORY_VOTERS = 9
CATEGORY_WEIGHT = 0.55  # a colour of the word's basic category fits this much (under MARGIN: a name's own colour wins)


@dataclass(frozen=True)
class Palette:
    """A region's main colours.

    Attributes:
        lab: (K, 3) float32 CIELAB (L* 0-100) of each main colour, largest share first.
        shares: (K,) float32 share of the region's pixels, summing to 1.
        pixels: how many pixels were measured.
    """

    lab: np.ndarray
    shares: np.ndarray
    pixels: int


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 sRGB -> (..., 3) float32 CIELAB (D65, L* in 0-100)."""
    a = np.asarray(rgb, np.uint8).reshape(-1, 1, 3).astype(np.float32) / 255.0
    return cv2.cvtColor(a, cv2.COLOR_RGB2Lab).reshape(np.shape(rgb)[:-1] + (3,))


def delta_e(lab_a: np.ndarray, lab_b: np.ndarray, k_l: float = 2.0) -> np.ndarray:
    """CIEDE2000 between broadcastable (..., 3) CIELAB arrays -> (...); k_l = 2 are the textiles
    weights (lightness counts half), k_l = 1 the standard formula."""
    a, b = np.broadcast_arrays(np.asarray(lab_a, np.float64), np.asarray(lab_b, np.float64))
    l1, a1, b1 = a[..., 0], a[..., 1], a[..., 2]
    l2, a2, b2 = b[..., 0], b[..., 1], b[..., 2]
    c_bar = 0.5 * (np.hypot(a1, b1) + np.hypot(a2, b2))
    g = 0.5 * (1 - np.sqrt(c_bar ** 7 / (c_bar ** 7 + 25.0 ** 7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360
    dl, dc = l2 - l1, c2p - c1p
    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(c1p * c2p == 0, 0.0, dh)
    dhh = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh / 2))
    l_bar, c_barp = 0.5 * (l1 + l2), 0.5 * (c1p + c2p)
    hs = h1p + h2p
    h_bar = np.where(np.abs(h1p - h2p) > 180, np.where(hs < 360, (hs + 360) / 2, (hs - 360) / 2), hs / 2)
    h_bar = np.where(c1p * c2p == 0, hs, h_bar)
    t = (1 - 0.17 * np.cos(np.radians(h_bar - 30)) + 0.24 * np.cos(np.radians(2 * h_bar))
         + 0.32 * np.cos(np.radians(3 * h_bar + 6)) - 0.20 * np.cos(np.radians(4 * h_bar - 63)))
    d_theta = 30 * np.exp(-(((h_bar - 275) / 25) ** 2))
    r_c = 2 * np.sqrt(c_barp ** 7 / (c_barp ** 7 + 25.0 ** 7))
    s_l = 1 + 0.015 * (l_bar - 50) ** 2 / np.sqrt(20 + (l_bar - 50) ** 2)
    s_c = 1 + 0.045 * c_barp
    s_h = 1 + 0.015 * c_barp * t
    r_t = -np.sin(np.radians(2 * d_theta)) * r_c
    return np.sqrt((dl / (k_l * s_l)) ** 2 + (dc / s_c) ** 2 + (dhh / s_h) ** 2 + r_t * (dc / s_c) * (dhh / s_h))


class ColourNames:
    """The colour vocabulary: name -> CIELAB, from the shipped table (xkcd survey, CC0; CSS)."""

    def __init__(self, names: list[str], rgb: np.ndarray) -> None:
        self.names = list(names)
        self.rgb = np.asarray(rgb, np.uint8)
        self.labs = rgb_to_lab(self.rgb)
        self._index = {n: i for i, n in enumerate(self.names)}
        self.max_words = max(len(n.split()) for n in self.names)

    @staticmethod
    @functools.cache
    def shipped() -> "ColourNames":
        names, rgb = [], []
        for line in COLOUR_TABLE.read_text(encoding="utf-8").splitlines():
            if not line or line.startswith("#"):
                continue
            name, hexv, _src = line.split("\t")
            name = name.replace("'", "").lower()
            if name in names:  # an xkcd name wins over the CSS one of the same spelling
                continue
            h = hexv.lstrip("#")
            names.append(name)
            rgb.append([int(h[i:i + 2], 16) for i in (0, 2, 4)])
        return ColourNames(names, np.array(rgb, np.uint8))

    def __contains__(self, name: str) -> bool:
        return self.normalise(name) in self._index

    def normalise(self, name: str) -> str:
        n = " ".join(name.lower().replace("-", " ").split())
        if n in self._index:
            return n
        for a, b in (("grey", "gray"), ("gray", "grey"), ("colour", "color")):
            if n.replace(a, b) in self._index:
                return n.replace(a, b)
        if n.replace(" ", "") in self._index:  # CSS spellings: "navyblue", "darkred"
            return n.replace(" ", "")
        return n

    @functools.cached_property
    def categories(self) -> np.ndarray:
        """(len(names),) the basic colour term (BASIC_COLOURS) each name belongs to."""
        focal = np.stack([self.labs[self._index[b]] for b in BASIC_COLOURS])
        out = []
        for name, lab in zip(self.names, self.labs):
            words = [BASIC_SYNONYMS.get(w, w) for w in name.split()]
            basic = [w for w in words if w in BASIC_COLOURS]
            out.append(basic[-1] if basic else BASIC_COLOURS[int(np.argmin(delta_e(focal, lab[None])))])
        return np.array(out)

    def category(self, name: str) -> str:
        """The basic colour term of a colour name ("cobalt blue" -> "blue", "burgundy" -> "red")."""
        return str(self.categories[self._index[self.normalise(name)]])

    def category_votes(self, labs: np.ndarray, category: str) -> np.ndarray:
        """(K,) share of each (K, 3) CIELAB colour's CATEGORY_VOTERS nearest names in `category`."""
        labs = np.asarray(labs, np.float64).reshape(-1, 3)
        d = delta_e(self.labs[None], labs[:, None])            # (K, names)
        near = np.argpartition(d, CATEGORY_VOTERS - 1, axis=1)[:, :CATEGORY_VOTERS]
        return (self.categories[near] == category).mean(axis=1)

    def basic_colour(self, lab: np.ndarray) -> tuple[str, float]:
        """The basic colour most of a (3,) CIELAB colour's CATEGORY_VOTERS nearest names belong to,
        and their share."""
        d = delta_e(self.labs, np.asarray(lab, np.float64)[None])
        names, counts = np.unique(self.categories[np.argpartition(d, CATEGORY_VOTERS - 1)[:CATEGORY_VOTERS]],
                                  return_counts=True)
        return str(names[int(np.argmax(counts))]), float(counts.max()) / CATEGORY_VOTERS

    def score(self, pal: "Palette | None", name: str) -> float:
        """How well colour name `name` fits a region: the best of its own colour's fit
        (`colour_score`) and CATEGORY_WEIGHT x how surely a main colour of the region is of the
        name's basic category (a "cobalt blue" tee that measures azure is still blue), in [0, 1]."""
        if pal is None:
            return 0.0
        category = self.category(name)
        keep = pal.shares >= MIN_SHARE
        votes = self.category_votes(pal.lab[keep], category)
        bonus = 0.6 + 0.4 * np.minimum(1.0, pal.shares[keep] / 0.4)
        hued = np.hypot(pal.lab[keep, 1], pal.lab[keep, 2]) >= ACHROMATIC_CHROMA
        if category not in ("black", "white", "grey"):  # a hue is only read off a colour that has one
            cat = float((votes * bonus * hued).max()) if keep.any() else 0.0
        else:
            cat = float((votes * bonus).max()) if keep.any() else 0.0
        return max(colour_score(pal, self.lab(name)), CATEGORY_WEIGHT * cat)

    def lab(self, name: str) -> np.ndarray:
        """(3,) CIELAB of a colour name (KeyError when it is not one)."""
        return self.labs[self._index[self.normalise(name)]]

    def nearest(self, lab: np.ndarray, k: int = 3) -> list[str]:
        """The k colour names nearest to a CIELAB colour (CIEDE2000)."""
        d = delta_e(self.labs, np.asarray(lab)[None])
        return [self.names[i] for i in np.argsort(d)[:k]]


def palette(pixels_rgb: np.ndarray, k: int = PALETTE_K, seed: int = 0) -> Palette | None:
    """The main colours of a region's pixels ((P, 3) uint8 RGB) by k-means in CIELAB; None when
    fewer than PALETTE_MIN_PIXELS pixels were measured."""
    px = np.asarray(pixels_rgb, np.uint8).reshape(-1, 3)
    if len(px) < PALETTE_MIN_PIXELS:
        return None
    if len(px) > PALETTE_MAX_PIXELS:
        px = px[np.linspace(0, len(px) - 1, PALETTE_MAX_PIXELS).astype(int)]
    lab = rgb_to_lab(px).astype(np.float32)
    k = min(k, len(px))
    cv2.setRNGSeed(seed)
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    _, labels, centres = cv2.kmeans(lab, k, None, crit, 2, cv2.KMEANS_PP_CENTERS)
    counts = np.bincount(labels.ravel(), minlength=k).astype(np.float32)
    order = np.argsort(-counts)
    return Palette(centres[order].astype(np.float32), (counts[order] / counts.sum()).astype(np.float32), len(px))


LIGHTNESS_WORDS = {"dark": (-1.0, 38.0), "light": (1.0, 68.0), "pale": (1.0, 68.0)}  # sign, L* threshold


def lightness_score(pal: Palette | None, word: str) -> float:
    """How well a bare lightness word ("dark", "light", "pale": no hue named) fits a region: the
    share of the palette darker (lighter) than LIGHTNESS_WORDS' L* threshold, soft, in [0, 1]."""
    if pal is None:
        return 0.0
    sign, l0 = LIGHTNESS_WORDS[word]
    fit = 1.0 / (1.0 + np.exp(-sign * (pal.lab[:, 0] - l0) / 5.0))
    return float(np.clip((fit * pal.shares).sum() / 0.6, 0.0, 1.0))


def colour_score(pal: Palette | None, lab: np.ndarray) -> float:
    """How well one colour (CIELAB) names a region: the best fit over the palette's colours that
    cover at least MIN_SHARE of it, exp(-(dE / DE_SCALE)^2) with a share bonus, in [0, 1]; 0 when
    the region was not measured."""
    if pal is None:
        return 0.0
    keep = pal.shares >= MIN_SHARE
    d = delta_e(pal.lab[keep], np.asarray(lab)[None])
    fit = np.exp(-(d / DE_SCALE) ** 2) * (0.6 + 0.4 * np.minimum(1.0, pal.shares[keep] / 0.4))
    return float(fit.max()) if fit.size else 0.0


def is_monochrome(image_rgb: np.ndarray) -> bool:
    """True when the (H, W, 3) uint8 RGB image has no colours to tell apart (black and white, or
    one tint): the larger std of its CIELAB a* and b* is under MONOCHROME_AB_STD (every 4th pixel)."""
    lab = rgb_to_lab(np.ascontiguousarray(np.asarray(image_rgb)[::4, ::4]))
    return float(max(lab[..., 1].std(), lab[..., 2].std())) < MONOCHROME_AB_STD


def chroma(lab: np.ndarray) -> float:
    """CIELAB chroma sqrt(a*^2 + b*^2) of one (3,) colour."""
    return float(np.hypot(lab[1], lab[2]))


def grey_level_score(pal: Palette | None, lab: np.ndarray, l_range: tuple[float, float] = (0.0, 100.0)) -> float:
    """How well an achromatic colour (black, white, grey) names a region of a black-and-white
    picture: `colour_score` on lightness alone (|dL*| in place of CIEDE2000), in [0, 1], with the
    region's L* first stretched from `l_range` (the darkest and lightest garment colours in view)
    to 0-100: film and old photos have no true white or black, so "white" is the lightest there."""
    if pal is None:
        return 0.0
    keep = pal.shares >= MIN_SHARE
    lo, hi = l_range
    light = (pal.lab[keep, 0] - lo) * (100.0 / max(hi - lo, 1.0))
    d = np.abs(light - float(lab[0]))
    fit = np.exp(-(d / DE_SCALE) ** 2) * (0.6 + 0.4 * np.minimum(1.0, pal.shares[keep] / 0.4))
    return float(fit.max()) if fit.size else 0.0
