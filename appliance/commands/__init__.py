"""Sub-commands of ``appliance``: one module each, exposing ``register(subparsers)``.

A module's ``register`` adds its parser and sets ``func`` to a callable taking the
parsed arguments and returning the exit status. Modules are imported only when listed
here, so a command's heavy imports stay inside its ``run`` function.
"""

COMMAND_MODULES: tuple[str, ...] = (
    "appliance.commands.verify",
    "appliance.commands.decode",
    "appliance.commands.issuer",
    "appliance.commands.trust_source",
    "appliance.commands.holder",
    "appliance.commands.run",
    "appliance.commands.sync",
    "appliance.commands.publish",
    "appliance.commands.audit",
    "appliance.commands.device",
    "appliance.commands.upload",
    "appliance.commands.heartbeat",
    "appliance.commands.hub",
    "appliance.commands.web",
    "appliance.commands.demo",
    "appliance.commands.fault",
    "appliance.commands.selftest",
    "appliance.commands.mdoc",
    "appliance.commands.mdl_radio",
)
