"""Trust data: loading sources, revocation structures, the installed store."""
