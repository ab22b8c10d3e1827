"""The interface every material plugin provides, and the code that shows them."""

from __future__ import annotations

from typing import Any

from zope.interface import Attribute, Interface

from compat_plugin import getPlugins


class IMaterial(Interface):
    """A material the simulator knows about."""

    def yieldStress(temperature: float) -> float:
        """The stress (in pascals) at which the material yields at ``temperature`` kelvin."""

    name = Attribute("The material's name, for display.")
    dielectricConstant = Attribute("The material's complex dielectric constant.")


def displayMaterial(material: Any) -> str:
    """One line describing ``material`` (an IMaterial provider) at room temperature."""
    return (
        f"{material.name}: yield stress {material.yieldStress(293.0):.4g} Pa at 293 K, "
        f"dielectric constant {material.dielectricConstant}"
    )


def displayAllKnownMaterials() -> list[str]:
    """Describe every material plugin installed for ``matsim.plugins``."""
    import matsim.plugins

    return [displayMaterial(material) for material in getPlugins(IMaterial, matsim.plugins)]
