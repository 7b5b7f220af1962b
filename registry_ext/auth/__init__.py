"""Access control (docs/auth.md): users, rules, tokens, the hook in front of every view.

Modules: ``rules`` (who may do what where), ``users`` (htpasswd, bcrypt),
``tokens`` (JWT issue and verify), ``scopes`` (what each endpoint needs),
``core`` (the caller and decisions), ``gate`` (the Flask hook, the helpers
views use: ``may_pull``, ``repository_filter``), ``audit`` (the audit log),
``settings`` (validation of ``[auth]``). Nothing is imported here, so
validating the configuration does not load Flask or the crypto libraries.
"""
