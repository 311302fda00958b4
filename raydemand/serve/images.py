"""Images from requests: base64 decoding and header checks before any pixel is decoded.

The ingress calls `check_image` on every image field: size after decoding base64, format,
dimensions from the header (decompression bombs stop here, before Pillow inflates anything),
then a full decode so that truncated or corrupt files are a 422 and not a model-side failure.
"""

from __future__ import annotations

import base64
import binascii
import io

import numpy as np

from raydemand.serve.config import LimitsConfig
from raydemand.serve.schemas import FieldError

FORMATS = ("PNG", "JPEG", "WEBP")


def check_image(text: str, loc: tuple, limits: LimitsConfig) -> bytes:
    """The image bytes of a base64 field, after checking that they decode within the limits."""
    from PIL import Image

    if len(text) > limits.max_image_bytes * 4 // 3 + 4:
        raise FieldError(loc, f"image is larger than {limits.max_image_bytes} bytes", 413)
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise FieldError(loc, f"not valid base64 ({e})") from None
    if not data:
        raise FieldError(loc, "empty image")
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as img:
            w, h = img.size  # from the header: nothing decoded yet
            if w * h > limits.max_image_pixels or max(w, h) > limits.max_image_side:
                raise FieldError(loc, f"image is {w}x{h} pixels; at most {limits.max_image_pixels} pixels and "
                                      f"{limits.max_image_side} per side are accepted")
            img.load()
    except FieldError:
        raise
    except Exception as e:  # Pillow raises many types for bad files (UnidentifiedImageError, OSError, SyntaxError, ...)
        raise FieldError(loc, f"not a decodable {'/'.join(FORMATS)} image ({type(e).__name__}: {e})") from None
    return data


def rgb_array(data: bytes, size: int) -> np.ndarray:
    """uint8 (size, size, 3) pixels of checked image bytes (greyscale replicated, alpha on white)."""
    from PIL import Image

    with Image.open(io.BytesIO(data), formats=FORMATS) as img:
        if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
            rgba = img.convert("RGBA")
            img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
        rgb = img.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    return np.array(rgb, dtype=np.uint8)


def png_bytes(pixels: np.ndarray) -> bytes:
    """uint8 (H, W) or (H, W, 3) pixels as a PNG file."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(pixels, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()
