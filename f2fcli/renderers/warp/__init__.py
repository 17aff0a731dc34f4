"""The `warp` renderer: no learned weights, the source crop warped along the face mesh.

Its steps, one module each: the layout of the moving parts (`layout`), the motion field that
places them per frame (`field`), rasterising the field into a backward map (`raster`), the
eyes (`eyes`) and the mouth (`mouth`); `renderer` runs them.
"""

from .renderer import PreparedSource, WarpRenderer
from .settings import EYE_MODES, EyeMode, WarpSettings

__all__ = ["EYE_MODES", "EyeMode", "PreparedSource", "WarpRenderer", "WarpSettings"]
