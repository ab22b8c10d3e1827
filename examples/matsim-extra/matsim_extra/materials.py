"""Aluminium, a material that arrives with ``pip install matsim-extra``."""

from __future__ import annotations

from matsim.imatsim import IMaterial
from zope.interface import implementer

from compat_plugin import IPlugin


@implementer(IPlugin, IMaterial)
class Sheet:
    """A thin aluminium sheet."""

    name = "Aluminium"
    dielectricConstant = 1.0 + 0.0j

    def yieldStress(self, temperature: float) -> float:
        return 9.5e7 * max(0.0, 1.0 - temperature / 900.0)


aluminiumSheet = Sheet()
