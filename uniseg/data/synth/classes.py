"""The fine classes by name: ``FINE.road``, ``FINE.traffic_sign_front``, ... (their ids in ``fine.yaml``).

Every drawing module labels its pixels with these ids; a space in a class name becomes ``_``.
"""

from __future__ import annotations

from types import SimpleNamespace

from uniseg.data.synth.spec import fine_classes

_CLASSES = fine_classes()

#: Fine class id by name (``fine.yaml`` order), e.g. ``FINE.guard_rail``.
FINE = SimpleNamespace(**{c.name.replace(" ", "_"): c.index for c in _CLASSES})
#: How many fine classes there are.
N_FINE = len(_CLASSES)
