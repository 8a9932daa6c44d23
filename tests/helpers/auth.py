"""
An auth manager for tests of per-DAG access: the simple auth manager, except that one user may not read one DAG.

The simple auth manager lets every role read every DAG, so a per-DAG refusal needs this small subclass. Select it
with ``[core] auth_manager = helpers.auth.OneDagDeniedAuthManager`` (the ``tests`` folder on the import path).
"""

from __future__ import annotations

from typing import Any

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

#: The user who may not read :data:`DENIED_DAG_ID` (a viewer; every other DAG it may read).
OUTSIDER = "outsider"
#: The DAG the outsider may not read.
DENIED_DAG_ID = "mjvideo_ui_hidden"


class OneDagDeniedAuthManager(SimpleAuthManager):
    """:class:`SimpleAuthManager` that refuses :data:`OUTSIDER` every access to :data:`DENIED_DAG_ID`."""

    def is_authorized_dag(self, *, method: Any, user: Any, access_entity: Any = None, details: Any = None) -> bool:
        if user.get_name() == OUTSIDER and details is not None and details.id == DENIED_DAG_ID:
            return False
        return super().is_authorized_dag(method=method, user=user, access_entity=access_entity, details=details)
