"""Sub-commands of the ``pixelpilot`` CLI, one module each (see ``agent.cli``)."""
