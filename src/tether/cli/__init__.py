"""The command line: ``tether --app MODULE[:NAME] run|routes|shell`` and the
app's own commands (``app.cli``).

``discovery`` finds the app, ``groups`` binds click groups to it, ``commands``
is the ``tether`` command itself.
"""
