"""Metal plates shipped with the simulator."""

from __future__ import annotations

from zope.interface import implementer

from compat_plugin import IPlugin
from matsim.imatsim import IMaterial


@implementer(IPlugin, IMaterial)
class Plate:
    """A metal plate whose yield stress falls linearly from a reference at 0 K."""

    def __init__(self, name: str, stress_at_0k: float, dielectric: complex) -> None:
        self.name = name
        self._stress = stress_at_0k
        self.dielectricConstant = dielectric

    def yieldStress(self, temperature: float) -> float:
        return self._stress * max(0.0, 1.0 - temperature / 1500.0)


steelPlate = Plate("Steel", 2.5e8, 2.7 + 0.2j)
brassPlate = Plate("Brass", 1.2e8, 1.4 + 0.5j)
