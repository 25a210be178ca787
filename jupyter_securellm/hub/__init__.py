"""JupyterHub integration: the Hub's identities and groups, the broker as a Hub service (tier 3),
and the forwarding client a single-user server uses in `broker_mode = "hub-service"`.

See docs/jupyterhub.md. Nothing here is imported unless a Hub deployment uses it.
"""
