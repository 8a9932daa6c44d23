"""
The connection form of Airflow 3.0/3.1, built from :data:`airflow_provider_mjvideo.connection_fields.EXTRA_FIELDS`.

Airflow 3.2+ reads ``conn-fields`` and ``ui-field-behaviour`` from ``get_provider_info()``; 3.0/3.1 call the
hook class's ``get_connection_form_widgets()`` / ``get_ui_field_behaviour()`` instead, and only when the
registered hook class defines them itself. :class:`ConnectionFormMixin` holds both; the hooks copy them into
their own class body below 3.2 (see :mod:`airflow_provider_mjvideo.hooks.midjourney`). The WTForms and FAB
imports happen only when the 3.0/3.1 UI asks for the form (those packages come with the FAB provider).
"""

from __future__ import annotations

from typing import Any

from airflow_provider_mjvideo.connection_fields import DEFAULT_CONN_ID, EXTRA_FIELDS, ExtraField, ui_field_behaviour


def _widget(extra: ExtraField) -> Any:
    """The WTForms field of one extra (Airflow 3.0's form reader knows String, Integer and Boolean fields)."""
    from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
    from flask_babel import lazy_gettext
    from wtforms import BooleanField, IntegerField, StringField
    from wtforms.validators import NumberRange, Optional, any_of  # any_of: what Airflow 3.0's form reader mocks

    label = lazy_gettext(extra.label)
    if extra.kind == "boolean":
        return BooleanField(label, default=extra.default, description=extra.help)
    if extra.kind == "choice":
        return StringField(
            label,
            widget=BS3TextFieldWidget(),
            validators=[Optional(), any_of(list(extra.choices))],
            default=extra.default,
            description=extra.help,
        )
    return IntegerField(
        label,
        widget=BS3TextFieldWidget(),
        validators=[Optional(), NumberRange(min=1)],
        default=extra.default,
        description=extra.help,
    )


class ConnectionFormMixin:
    """Connection-type declarations shared by the sync and async hooks, and the 3.0/3.1 form methods."""

    conn_name_attr = "midjourney_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "midjourney"
    hook_name = "Midjourney"

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields of the connection form on Airflow 3.0/3.1 (3.2+ reads ``conn-fields``)."""
        return {extra.name: _widget(extra) for extra in EXTRA_FIELDS}

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Hidden, relabelled and placeholder fields of the form, in the hook method's snake_case keys."""
        return {key.replace("-", "_"): value for key, value in ui_field_behaviour().items()}
