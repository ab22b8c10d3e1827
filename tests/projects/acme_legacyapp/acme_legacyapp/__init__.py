"""An application written for ``twisted.plugin``, as Axiom's ``axiomatic`` is: its commands are
plugins in its own plugin package, ``acme_legacyapp.plugins``, looked up with Twisted's
``getPlugins`` bound when its modules are imported."""
