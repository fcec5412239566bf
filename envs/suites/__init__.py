"""The project's own task suites in the OSWorld format, with scripted solutions.

- ``envs.suites.desktop``: desktop tasks on Xvfb with real Debian applications (xterm, mousepad,
  galculator, pcmanfm); ``envs.suites.desktop.solutions`` solves each of them through
  ``envs.actions`` on a ``TaskEnv``.
- ``envs.suites.osworld_os``: scripted solutions of the OSWorld ``os``-domain tasks that run here.

Importing this package starts nothing.
"""
