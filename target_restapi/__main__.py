"""Allow `python -m target_restapi`."""

from target_restapi.target import TargetRestApi

TargetRestApi.cli()
