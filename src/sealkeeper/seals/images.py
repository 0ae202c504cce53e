"""Seal images: generated stamps (PNG and SVG) and checks on uploaded images.

Scope:

* :func:`render_png` / :func:`render_svg` draw the visible stamp of a seal from
  the organization's (or, for a personal e-signature, the person's) name and
  the seal type: a round red seal with a double ring, the name along the upper
  arc, a star and the type label (official, authorized e-signature, contract,
  employment agreement); an oval seal (financial, invoice); a square seal
  (personal e-signature).
* :func:`validate_uploaded_image` accepts a user-supplied PNG or JPEG stamp and
  returns it re-encoded as a metadata-free PNG; anything else is refused.

Layout is computed once, in units of the image side (0..1), by ``_layout_*``
helpers that measure text with the seal font; the PNG and SVG writers only
draw the resulting primitives. The PNG is drawn as an alpha mask at 2-4x and
downsampled (antialiasing), then filled with seal red on a transparent
background.

Fonts: a system font covering CJK and Latin is looked up (Noto Sans CJK from
Debian ``fonts-noto-cjk``, or WenQuanYi Micro Hei / Zen Hei from
``fonts-wqy-microhei`` / ``fonts-wqy-zenhei``); ``font_path`` overrides it.
Without one, DejaVu Sans or Pillow's built-in font is used with a logged
warning, and CJK characters render as boxes.
"""

from __future__ import annotations

import io
import logging
import math
import threading
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from html import escape
from pathlib import Path
from typing import Final, Literal

from PIL import Image, ImageDraw, ImageFont, ImageOps

from sealkeeper.errors import ConfigurationError, InvalidInput

__all__ = [
    "SEAL_LABELS",
    "SEAL_TYPES",
    "render_png",
    "render_svg",
    "seal_label",
    "validate_uploaded_image",
]

_log = logging.getLogger(__name__)

SEAL_LABELS: Final[dict[str, str]] = {
    "official": "Official Seal",
    "authorized_signature": "Authorized E-signature",
    "contract": "Contract Seal",
    "employment_agreement": "Employment Agreement Seal",
    "financial": "Financial Seal",
    "invoice": "Invoice Seal",
    "personal": "Personal E-signature",
}
SEAL_TYPES: Final[tuple[str, ...]] = tuple(SEAL_LABELS)

_Shape = Literal["round", "oval", "square"]
_SHAPES: Final[dict[str, _Shape]] = {
    "official": "round",
    "authorized_signature": "round",
    "contract": "round",
    "employment_agreement": "round",
    "financial": "oval",
    "invoice": "oval",
    "personal": "square",
}

_RED: Final = (218, 28, 36)
_RED_HEX: Final = "#da1c24"
_SVG_FONTS: Final = (
    "'Noto Sans CJK SC','Source Han Sans SC','WenQuanYi Micro Hei','WenQuanYi Zen Hei',"
    "'PingFang SC','Microsoft YaHei','DejaVu Sans',sans-serif"
)
_ELLIPSIS: Final = "\u2026"
_MAX_NAME_CHARS: Final = 120  # input beyond this is cut before any layout work
_MIN_SIZE: Final = 64
_MAX_SIZE: Final = 2048
_MAX_UPLOAD_SIDE: Final = 4000

# Fonts, best first: (path, preferred face family inside a collection).
_CJK_FONTS: Final = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/wqy-microhei/wqy-microhei.ttc",
    "/usr/share/fonts/wqy-zenhei/wqy-zenhei.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "C:/Windows/Fonts/msyh.ttc",
)
_LATIN_FONTS: Final = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf",
)
_LEADING: Final = 1.18  # line height, in em, of stacked lines
_MEASURE_PX: Final = 1000  # fonts are measured at this size; results are in em
_FONT_LOCK = threading.Lock()  # FreeType faces are not safe for concurrent use


# --------------------------------------------------------------------------- public API


def seal_label(seal_type: str) -> str:
    """The human label of a seal type ("official" -> "Official Seal")."""
    try:
        return SEAL_LABELS[seal_type]
    except KeyError:
        raise InvalidInput(
            f"unknown seal type {seal_type!r}; expected one of {', '.join(SEAL_TYPES)}",
            field="seal_type",
        ) from None


def render_png(
    seal_type: str,
    name: str,
    *,
    size: int = 400,
    font_path: str | None = None,
    code: str | None = None,
) -> bytes:
    """Draw the seal as a ``size`` x ``size`` RGBA PNG on a transparent background.

    ``code`` (oval seals only) is an optional line under the label, e.g. a
    registration or tax number.
    """
    if isinstance(size, bool) or not isinstance(size, int) or not (_MIN_SIZE <= size <= _MAX_SIZE):
        raise InvalidInput(
            f"seal image size must be an integer from {_MIN_SIZE} to {_MAX_SIZE} pixels",
            field="size",
        )
    font = _resolve_font(font_path)
    with _FONT_LOCK:
        prims = _layout(seal_type, name, font, code)
        img = _draw_png(prims, font, size)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def render_svg(
    seal_type: str,
    name: str,
    *,
    font_path: str | None = None,
    code: str | None = None,
) -> str:
    """Draw the seal as a standalone SVG document (400 x 400, red on transparent).

    Text is measured with the same font as :func:`render_png`, so both fit the
    same way; the SVG names common CJK fonts and lets the viewer choose.
    """
    font = _resolve_font(font_path)
    with _FONT_LOCK:
        prims = _layout(seal_type, name, font, code)
    return _draw_svg(prims)


def validate_uploaded_image(
    data: bytes, content_type: str, *, max_bytes: int = 2_000_000
) -> tuple[bytes, str]:
    """Check an uploaded stamp image and return it re-encoded as ``(png_bytes, "image/png")``.

    Only PNG and JPEG are accepted (SVG can carry scripts); the bytes must
    match the declared type, be at most ``max_bytes`` long, decode completely
    and be at most 4000 x 4000 pixels. Re-encoding drops all metadata (EXIF,
    text chunks, ICC profiles); the EXIF orientation is applied first.
    """
    fmt = _declared_format(content_type)
    if not data:
        raise InvalidInput("the uploaded image is empty", field="image")
    if len(data) > max_bytes:
        raise InvalidInput(
            f"the uploaded image is {len(data)} bytes; at most {max_bytes} bytes are allowed",
            field="image",
        )
    if not data.startswith(_MAGIC[fmt]):
        if _looks_like_svg(data):
            raise InvalidInput("SVG images are not accepted; upload a PNG or JPEG", field="image")
        raise InvalidInput(
            f"the uploaded file is not a {fmt} image although it was declared as {content_type}",
            field="image",
        )
    im = _open_checked(data, fmt)
    try:
        im = ImageOps.exif_transpose(im)
        has_alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
        if im.mode not in ("RGB", "RGBA", "L", "LA"):
            im = im.convert("RGBA" if has_alpha else "RGB")
        out = io.BytesIO()
        im.save(out, format="PNG")  # no pnginfo / exif / icc_profile: metadata dropped
    except Exception as e:  # hostile metadata can trip Pillow in many ways; never a 500
        raise InvalidInput("the uploaded image could not be decoded", field="image") from e
    return out.getvalue(), "image/png"


# --------------------------------------------------------------------------- uploads

_MAGIC: Final = {"PNG": b"\x89PNG\r\n\x1a\n", "JPEG": b"\xff\xd8\xff"}
_CONTENT_TYPES: Final = {
    "image/png": "PNG",
    "image/x-png": "PNG",
    "image/jpeg": "JPEG",
    "image/jpg": "JPEG",
    "image/pjpeg": "JPEG",
}


def _declared_format(content_type: str) -> str:
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype == "image/svg+xml" or ctype.endswith("+xml"):
        raise InvalidInput("SVG images are not accepted; upload a PNG or JPEG", field="image")
    try:
        return _CONTENT_TYPES[ctype]
    except KeyError:
        raise InvalidInput(
            f"unsupported image type {content_type!r}; upload a PNG or JPEG", field="image"
        ) from None


def _looks_like_svg(data: bytes) -> bool:
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith(b"<") and (b"<svg" in head or head.startswith(b"<?xml"))


def _open_checked(data: bytes, fmt: str) -> Image.Image:
    """Open, size-check, verify and fully decode ``data``; every failure is InvalidInput."""
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as probe:
            width, height = probe.size
            if width > _MAX_UPLOAD_SIDE or height > _MAX_UPLOAD_SIDE:
                raise InvalidInput(
                    f"the uploaded image is {width}x{height} pixels; at most "
                    f"{_MAX_UPLOAD_SIDE}x{_MAX_UPLOAD_SIDE} are allowed",
                    field="image",
                )
            probe.verify()
        im = Image.open(io.BytesIO(data), formats=[fmt])
        im.load()
    except InvalidInput:
        raise
    except Image.DecompressionBombError as e:
        raise InvalidInput(
            f"the uploaded image is too large; at most {_MAX_UPLOAD_SIDE}x{_MAX_UPLOAD_SIDE} "
            "pixels are allowed",
            field="image",
        ) from e
    except Exception as e:  # UnidentifiedImageError, OSError, SyntaxError, struct.error...
        raise InvalidInput(
            f"the uploaded image is not a valid {fmt} file (corrupt or truncated)", field="image"
        ) from e
    return im


# --------------------------------------------------------------------------- fonts


@dataclass(frozen=True)
class _FontSpec:
    path: str | None  # None: Pillow's built-in font
    index: int

    def at(self, px: int) -> ImageFont.FreeTypeFont:
        return _load_font(self.path, self.index, max(1, px))

    def em(self, text: str) -> float:
        """Advance width of ``text`` in em."""
        return self.at(_MEASURE_PX).getlength(text) / _MEASURE_PX

    def centre(self, text: str) -> float:
        """Height (em, above the baseline) of the visual centre of a line of ``text``.

        Measured on a reference glyph so all glyphs of a line share one baseline.
        """
        ref = "\u56fd" if any(_is_wide(c) for c in text) else "H"
        _, top, _, bottom = self.at(_MEASURE_PX).getbbox(ref, anchor="ls")
        return -(top + bottom) / 2 / _MEASURE_PX


@lru_cache(maxsize=64)
def _load_font(path: str | None, index: int, px: int) -> ImageFont.FreeTypeFont:
    if path is None:
        font = ImageFont.load_default(px)
        if not isinstance(font, ImageFont.FreeTypeFont):
            raise ConfigurationError("Pillow was built without FreeType; seal images need it")
        return font
    return ImageFont.truetype(path, px, index=index)


@lru_cache(maxsize=8)
def _resolve_font(font_path: str | None) -> _FontSpec:
    if font_path is not None:
        if not Path(font_path).is_file():
            raise ConfigurationError(f"seal font {font_path!r} does not exist")
        try:
            return _FontSpec(font_path, _pick_face(font_path))
        except OSError as e:
            raise ConfigurationError(f"seal font {font_path!r} cannot be loaded") from e
    for candidate in _CJK_FONTS:
        if Path(candidate).is_file():
            try:
                return _FontSpec(candidate, _pick_face(candidate))
            except OSError:
                _log.warning("seal font %s cannot be loaded; trying the next one", candidate)
    for candidate in _LATIN_FONTS:
        if Path(candidate).is_file():
            _log.warning(
                "no CJK font found (install fonts-wqy-microhei or fonts-noto-cjk); "
                "seal images use %s and CJK names render as boxes",
                candidate,
            )
            return _FontSpec(candidate, 0)
    _log.warning(
        "no seal font found (install fonts-wqy-microhei or fonts-noto-cjk); seal images use "
        "Pillow's built-in font and CJK names render as boxes"
    )
    return _FontSpec(None, 0)


def _pick_face(path: str) -> int:
    """In a font collection, prefer the Simplified Chinese proportional face."""
    if not path.lower().endswith((".ttc", ".otc")):
        ImageFont.truetype(path, 12)
        return 0
    families: list[str] = []
    for index in range(32):
        try:
            families.append(ImageFont.truetype(path, 12, index=index).getname()[0] or "")
        except OSError:
            break
    if not families:
        raise OSError(f"no usable face in {path}")
    for index, family in enumerate(families):
        if family.endswith(" SC") and "Mono" not in family:
            return index
    return 0


# --------------------------------------------------------------------------- names


def _is_wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F")


def _clean_text(text: str, *, field: str) -> str:
    """Drop control / format / unassigned characters, collapse spaces, cap the length."""
    if not isinstance(text, str):
        raise InvalidInput(f"{field} must be text", field=field)
    kept = "".join(
        " " if c.isspace() else c
        for c in unicodedata.normalize("NFC", text)
        if c.isspace() or unicodedata.category(c)[0] != "C"
    )
    cleaned = " ".join(kept.split())
    if not cleaned:
        raise InvalidInput(f"{field} must not be empty", field=field)
    if len(cleaned) > _MAX_NAME_CHARS:
        cleaned = cleaned[: _MAX_NAME_CHARS - 1].rstrip() + _ELLIPSIS
    return cleaned


def _truncate_to(font: _FontSpec, text: str, max_em: float) -> str:
    """Longest prefix of ``text`` plus an ellipsis whose width is at most ``max_em``."""
    if font.em(text) <= max_em:
        return text
    for cut in range(len(text) - 1, 0, -1):
        candidate = text[:cut].rstrip() + _ELLIPSIS
        if font.em(candidate) <= max_em:
            return candidate
    return _ELLIPSIS


# --------------------------------------------------------------------------- layout

# Primitives, in units of the image side (0..1), y downwards.


@dataclass(frozen=True)
class _Ring:
    cx: float
    cy: float
    rx: float  # stroke centre line
    ry: float
    width: float


@dataclass(frozen=True)
class _Box:
    x0: float
    y0: float
    x1: float
    y1: float
    width: float
    radius: float


@dataclass(frozen=True)
class _Star:
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class _Text:
    """A straight line of text centred on (x, y)."""

    text: str
    x: float
    y: float
    size: float
    baseline_up: float  # distance from the centre line down to the baseline


@dataclass(frozen=True)
class _Glyph:
    ch: str
    x: float  # visual centre
    y: float
    angle: float  # degrees clockwise; 0 = upright
    size: float


@dataclass(frozen=True)
class _ArcText:
    """Text on the upper part of an ellipse (glyphs for PNG, a path for SVG)."""

    text: str
    glyphs: tuple[_Glyph, ...]
    cx: float
    cy: float
    rx: float  # baseline ellipse
    ry: float
    half_span: float  # parametric angle (radians) each side of the top
    size: float
    spacing: float  # extra space between glyphs
    length: float  # length of the text along the baseline


_Prim = _Ring | _Box | _Star | _Text | _ArcText


def _layout(seal_type: str, name: str, font: _FontSpec, code: str | None) -> list[_Prim]:
    label = seal_label(seal_type)
    shape = _SHAPES[seal_type]
    clean = _clean_text(name, field="name")
    if shape == "round":
        return _layout_round(clean, label, font)
    if shape == "oval":
        clean_code = None if code is None or not code.strip() else _clean_text(code, field="code")
        return _layout_oval(clean, label, clean_code, font)
    return _layout_square(clean, label, font)


def _layout_round(name: str, label: str, font: _FontSpec) -> list[_Prim]:
    c = 0.5
    prims: list[_Prim] = [_Ring(c, c, 0.462, 0.462, 0.036), _Ring(c, c, 0.424, 0.424, 0.008)]
    inner_edge = 0.42
    prims.append(
        _arc_text(
            name,
            font,
            c,
            c,
            lambda f: inner_edge - 0.026 - 0.5 * f,
            math.radians(112),
            max_size=0.115,
        )
    )
    prims.append(_star(c, c - 0.01, 0.128))
    line = _fit_line(label, font, c, c + 0.225, max_size=0.058, max_width=0.5)
    words = label.split(" ")
    if line.size < 0.04 and len(words) > 1:  # long label: two balanced lines, larger type
        lines = min(
            ([" ".join(words[:i]), " ".join(words[i:])] for i in range(1, len(words))),
            key=lambda pair: max(font.em(ln) for ln in pair),
        )
        size = min(0.05, 0.46 / max(font.em(ln) for ln in lines))
        prims.extend(
            _fit_line(ln, font, c, c + 0.2 + i * size * 1.15, max_size=size, max_width=0.46)
            for i, ln in enumerate(lines)
        )
    else:
        prims.append(line)
    return prims


def _layout_oval(name: str, label: str, code: str | None, font: _FontSpec) -> list[_Prim]:
    c = 0.5
    rx, ry, w = 0.468, 0.318, 0.024
    prims: list[_Prim] = [_Ring(c, c, rx, ry, w)]
    pad = w / 2 + 0.028
    prims.append(
        _arc_text(
            name,
            font,
            c,
            c,
            lambda f: (rx - pad - 0.5 * f, ry - pad - 0.5 * f),
            math.radians(104),
            max_size=0.082,
        )
    )
    label_y = c + 0.045 if code is None else c + 0.02
    prims.append(_fit_line(label, font, c, label_y, max_size=0.062, max_width=0.5))
    if code is not None:
        prims.append(
            _fit_line(code, font, c, c + 0.14, max_size=0.05, max_width=0.56, truncate=True)
        )
    return prims


def _layout_square(name: str, label: str, font: _FontSpec) -> list[_Prim]:
    x0, y0, x1, y1, w = 0.05, 0.05, 0.95, 0.95, 0.045
    prims: list[_Prim] = [_Box(x0, y0, x1, y1, w, 0.03)]
    inner = (x0 + w + 0.05, y0 + w + 0.045, x1 - w - 0.05, 0.78)
    if all(_is_wide(ch) for ch in name.replace(" ", "")):
        prims.extend(_cjk_grid(name.replace(" ", ""), font, inner))
    else:
        prims.extend(_latin_lines(name, font, inner))
    prims.append(_fit_line(label, font, 0.5, 0.845, max_size=0.052, max_width=0.68))
    return prims


def _arc_text(
    text: str,
    font: _FontSpec,
    cx: float,
    cy: float,
    radii: Callable[[float], float | tuple[float, float]],
    half_span: float,
    *,
    max_size: float = 0.102,
) -> _ArcText:
    """Fit ``text`` on the upper arc: shrink the font, then the spacing, then truncate.

    ``radii(f)`` gives the radius (or (rx, ry)) of the glyph-centre ellipse for
    font size ``f``. Glyphs are spaced along the ellipse drawn 0.3 em inside
    that one, so their feet (which are closer together) never touch.
    """
    wide = any(_is_wide(ch) for ch in text)
    min_size = 0.05 if wide else 0.042
    min_gap, max_gap = (0.04, 0.9) if wide else (0.0, 0.32)
    size = max_size
    while True:
        r = radii(size)
        rx, ry = (r, r) if isinstance(r, float) else r
        perim = _Ellipse(cx, cy, rx - 0.3 * size, ry - 0.3 * size)
        avail = perim.length(-half_span, half_span)
        n = len(text)
        natural = font.em(text) * size
        if natural + min_gap * size * (n - 1) <= avail or size <= min_size:
            break
        size = max(min_size, size - 0.002)
    if natural + min_gap * size * (n - 1) > avail:
        # Even at the smallest size the name is too long: truncate with an ellipsis.
        text = _truncate_to(font, text, avail / size)
        n = len(text)
        natural = font.em(text) * size
        min_gap = 0.0
    gap = 0.0 if n < 2 else min(max_gap * size, (avail - natural) / (n - 1))
    gap = max(gap, min_gap * size if n > 1 else 0.0)
    total = natural + gap * (n - 1)

    glyph_ellipse = _Ellipse(cx, cy, rx, ry)
    up = font.centre(text)
    glyphs: list[_Glyph] = []
    start = perim.length(-half_span, 0.0) - total / 2
    pos = start
    for ch in text:
        adv = font.em(ch) * size
        t = perim.param_at(-half_span, pos + adv / 2)
        x, y = glyph_ellipse.point(t)
        glyphs.append(_Glyph(ch, x, y, glyph_ellipse.normal_angle(t), size))
        pos += adv + gap
    base = _Ellipse(cx, cy, rx - up * size, ry - up * size)
    # Spacing on the SVG baseline, scaled from the spacing ellipse.
    scale = base.length(-half_span, half_span) / avail
    return _ArcText(
        text=text,
        glyphs=tuple(glyphs),
        cx=cx,
        cy=cy,
        rx=base.rx,
        ry=base.ry,
        half_span=half_span,
        size=size,
        spacing=(total * scale - natural) / (n - 1) if n > 1 else 0.0,
        length=total * scale,
    )


@dataclass(frozen=True)
class _Ellipse:
    """Ellipse parametrised by t (radians) from the top, clockwise on screen."""

    cx: float
    cy: float
    rx: float
    ry: float

    def point(self, t: float) -> tuple[float, float]:
        return self.cx + self.rx * math.sin(t), self.cy - self.ry * math.cos(t)

    def normal_angle(self, t: float) -> float:
        """Clockwise rotation (degrees) that turns 'up' into the outward normal at t."""
        return math.degrees(math.atan2(self.ry * math.sin(t), self.rx * math.cos(t)))

    def _speed(self, t: float) -> float:
        return math.hypot(self.rx * math.cos(t), self.ry * math.sin(t))

    def length(self, t0: float, t1: float, steps: int = 256) -> float:
        h = (t1 - t0) / steps
        return sum(self._speed(t0 + (i + 0.5) * h) for i in range(steps)) * h

    def param_at(self, t0: float, s: float) -> float:
        """Parameter t at arc length ``s`` from ``t0`` (Newton steps, s may be < 0)."""
        t = t0 + s / max(self._speed(t0), 1e-9)
        for _ in range(8):
            t -= (self.length(t0, t, 64) - s) / max(self._speed(t), 1e-9)
        return t


def _star(cx: float, cy: float, r: float) -> _Star:
    pts = []
    for i in range(10):
        rad = r if i % 2 == 0 else r * 0.382
        a = math.radians(-90 + 36 * i)
        pts.append((cx + rad * math.cos(a), cy + rad * math.sin(a)))
    return _Star(tuple(pts))


def _fit_line(
    text: str,
    font: _FontSpec,
    x: float,
    y: float,
    *,
    max_size: float,
    max_width: float,
    min_size: float = 0.03,
    truncate: bool = False,
) -> _Text:
    em = max(font.em(text), 1e-6)
    size = min(max_size, max_width / em)
    if size < min_size and truncate:
        size = min_size
        text = _truncate_to(font, text, max_width / size)
    return _Text(text, x, y, size, font.centre(text) * size)


def _cjk_grid(name: str, font: _FontSpec, box: tuple[float, float, float, float]) -> list[_Prim]:
    """Seal-script layout: columns read top to bottom, right to left. Only the
    name itself is shown: a legal seal adds no characters the signer did not give."""
    chars = list(name)
    if len(chars) > 9:
        chars = [*chars[:8], _ELLIPSIS]
    n = len(chars)
    cols = 1 if n == 1 else 2 if n <= 6 else 3
    rows = math.ceil(n / cols)
    x0, y0, x1, y1 = box
    cw, ch = (x1 - x0) / cols, (y1 - y0) / rows
    size = min(cw, ch) * 0.94
    prims: list[_Prim] = []
    for i, c in enumerate(chars):
        col, row = cols - 1 - i // rows, i % rows
        sx = size * min(1.0, cw * 0.94 / max(font.em(c) * size, 1e-6))
        prims.append(
            _Text(
                c,
                x0 + (col + 0.5) * cw,
                y0 + (row + 0.5) * ch,
                min(size, sx),
                font.centre(c) * min(size, sx),
            )
        )
    return prims


def _latin_lines(name: str, font: _FontSpec, box: tuple[float, float, float, float]) -> list[_Prim]:
    x0, y0, x1, y1 = box
    width, height = x1 - x0, y1 - y0
    lines = _balanced_lines(name.split(" "), font, max_lines=4, aspect=width / height)
    size = min(0.22, height * _block_size(lines, font, width / height))
    if size < 0.05:
        size = 0.05
        lines = [_truncate_to(font, ln, width / size) for ln in lines]
    lead = size * _LEADING
    top = (y0 + y1) / 2 - lead * (len(lines) - 1) / 2
    up = font.centre(name) * size
    return [_Text(ln, (x0 + x1) / 2, top + i * lead, size, up) for i, ln in enumerate(lines)]


def _balanced_lines(
    words: Sequence[str], font: _FontSpec, *, max_lines: int, aspect: float
) -> list[str]:
    """Split words into at most ``max_lines`` lines, minimising the widest line."""
    words = [w for w in words if w]
    best: list[str] = [" ".join(words)]
    best_size = _block_size(best, font, aspect)
    for n_lines in range(2, min(len(words), max_lines) + 1):
        lines = _greedy_split(words, font, n_lines)
        size = _block_size(lines, font, aspect)
        if size > best_size * 1.05:  # fewer lines unless more lines clearly help
            best, best_size = lines, size
    return best


def _block_size(lines: Sequence[str], font: _FontSpec, aspect: float) -> float:
    """Font size (in box heights) at which ``lines`` fill a box of width/height ``aspect``."""
    return min(1 / (len(lines) * _LEADING), aspect / max(font.em(ln) for ln in lines))


def _greedy_split(words: Sequence[str], font: _FontSpec, n_lines: int) -> list[str]:
    target = font.em(" ".join(words)) / n_lines
    lines: list[str] = []
    current: list[str] = []
    for i, word in enumerate(words):
        remaining_words = len(words) - i
        remaining_lines = n_lines - len(lines) - 1
        too_wide = font.em(" ".join([*current, word])) > target * 1.1 and remaining_lines > 0
        if current and (too_wide or remaining_words <= remaining_lines):
            lines.append(" ".join(current))
            current = []
        current.append(word)
    lines.append(" ".join(current))
    return lines


# --------------------------------------------------------------------------- PNG


def _draw_png(prims: Sequence[_Prim], font: _FontSpec, size: int) -> Image.Image:
    scale = 4 if size <= 600 else 2
    side = size * scale
    mask = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(mask)

    def px(v: float) -> float:
        return v * side

    for p in prims:
        if isinstance(p, _Ring):
            half = p.width / 2
            box = (
                px(p.cx - p.rx - half),
                px(p.cy - p.ry - half),
                px(p.cx + p.rx + half),
                px(p.cy + p.ry + half),
            )
            draw.ellipse(box, outline=255, width=max(1, round(px(p.width))))
        elif isinstance(p, _Box):
            draw.rounded_rectangle(
                (px(p.x0), px(p.y0), px(p.x1), px(p.y1)),
                radius=px(p.radius),
                outline=255,
                width=max(1, round(px(p.width))),
            )
        elif isinstance(p, _Star):
            draw.polygon([(px(x), px(y)) for x, y in p.points], fill=255)
        elif isinstance(p, _Text):
            f = font.at(round(px(p.size)))
            draw.text((px(p.x), px(p.y + p.baseline_up)), p.text, fill=255, font=f, anchor="ms")
        else:
            up = font.centre(p.text)
            for g in p.glyphs:
                _paste_glyph(mask, g, font, side, up)
    out = mask.resize((size, size), Image.Resampling.LANCZOS)
    img = Image.new("RGBA", (size, size), (*_RED, 0))
    img.putalpha(out)
    return img


def _paste_glyph(mask: Image.Image, g: _Glyph, font: _FontSpec, side: int, up: float) -> None:
    f_px = max(1, round(g.size * side))
    tile_side = 2 * f_px
    tile = Image.new("L", (tile_side, tile_side), 0)
    ImageDraw.Draw(tile).text(
        (f_px, f_px + up * f_px), g.ch, fill=255, font=font.at(f_px), anchor="ms"
    )
    tile = tile.rotate(-g.angle, resample=Image.Resampling.BICUBIC)
    mask.paste(255, (round(g.x * side) - f_px, round(g.y * side) - f_px), tile)


# --------------------------------------------------------------------------- SVG

_SVG_SIDE: Final = 400
_SVG_UNITS: Final = 1000.0


def _n(v: float) -> str:
    return f"{v * _SVG_UNITS:.2f}".rstrip("0").rstrip(".")


def _draw_svg(prims: Sequence[_Prim]) -> str:
    body: list[str] = []
    arcs = 0
    for p in prims:
        if isinstance(p, _Ring):
            body.append(
                f'<ellipse cx="{_n(p.cx)}" cy="{_n(p.cy)}" rx="{_n(p.rx)}" ry="{_n(p.ry)}" '
                f'fill="none" stroke="{_RED_HEX}" stroke-width="{_n(p.width)}"/>'
            )
        elif isinstance(p, _Box):
            half = p.width / 2
            body.append(
                f'<rect x="{_n(p.x0 + half)}" y="{_n(p.y0 + half)}" '
                f'width="{_n(p.x1 - p.x0 - p.width)}" height="{_n(p.y1 - p.y0 - p.width)}" '
                f'rx="{_n(p.radius)}" fill="none" stroke="{_RED_HEX}" '
                f'stroke-width="{_n(p.width)}"/>'
            )
        elif isinstance(p, _Star):
            pts = " ".join(f"{_n(x)},{_n(y)}" for x, y in p.points)
            body.append(f'<polygon points="{pts}" fill="{_RED_HEX}"/>')
        elif isinstance(p, _Text):
            body.append(
                f'<text x="{_n(p.x)}" y="{_n(p.y + p.baseline_up)}" font-size="{_n(p.size)}" '
                f'text-anchor="middle">{escape(p.text, quote=True)}</text>'
            )
        else:
            arcs += 1
            e = _Ellipse(p.cx, p.cy, p.rx, p.ry)
            (sx, sy), (ex, ey) = e.point(-p.half_span), e.point(p.half_span)
            large = 1 if p.half_span > math.pi / 2 else 0
            path_id = f"seal-arc-{arcs}"
            body.append(
                f'<path id="{path_id}" fill="none" d="M {_n(sx)} {_n(sy)} '
                f'A {_n(p.rx)} {_n(p.ry)} 0 {large} 1 {_n(ex)} {_n(ey)}"/>'
            )
            body.append(
                f'<text font-size="{_n(p.size)}" letter-spacing="{_n(p.spacing)}">'
                f'<textPath href="#{path_id}" xlink:href="#{path_id}" startOffset="50%" '
                f'text-anchor="middle" textLength="{_n(p.length)}" lengthAdjust="spacing">'
                f"{escape(p.text, quote=True)}</textPath></text>"
            )
    inner = "\n  ".join(body)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'width="{_SVG_SIDE}" height="{_SVG_SIDE}" viewBox="0 0 {_SVG_UNITS:.0f} '
        f'{_SVG_UNITS:.0f}">\n'
        f'<g fill="{_RED_HEX}" font-family="{_SVG_FONTS}" font-weight="bold">\n  '
        f"{inner}\n</g>\n</svg>\n"
    )
