"""Where a stream's requests go: a URL template and a method, checked once at start-up.

Record requests (`url`, `method`) and delete requests (`delete_url`, `delete_method`) go
through the same checks, each failure naming its setting.
"""

from __future__ import annotations

from typing import Any

from target_restapi.delivery.url_safety import check_record_hosts
from target_restapi.errors import SettingsError
from target_restapi.settings.checks import url_problem
from target_restapi.settings.schema import METHODS
from target_restapi.templates import Template, whole_record_problem


def checked_url(url: str, setting: str, *, allow_record_hosts: bool, where: str) -> Template:
    """The URL template of `setting`: an http(s) URL whose host no record chooses, unasked."""
    problem = url_problem(url)
    if problem:
        raise SettingsError(f"{where}: setting '{setting}' {problem}")
    template = Template.parse(url)
    problem = whole_record_problem(setting, template)
    if problem:
        raise SettingsError(f"{where}: {problem}")
    check_record_hosts(url, allow_record_hosts, where, setting=setting)
    return template


def checked_method(value: Any, setting: str, where: str) -> str:
    """The method of `setting`, upper case, one of METHODS."""
    method = str(value).upper()
    if method not in METHODS:
        raise SettingsError(
            f"{where}: setting '{setting}' is {value!r}; use one of {', '.join(METHODS)}"
        )
    return method
