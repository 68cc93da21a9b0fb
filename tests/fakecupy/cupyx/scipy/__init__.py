from . import special
