"""Deal pipelines: HubSpot's default Sales Pipeline plus one custom pipeline, read-only.

``GET /crm/v3/pipelines/deals``, ``…/{pipelineId}``, ``…/{pipelineId}/stages`` and
``…/{pipelineId}/stages/{stageId}``, plus ``/crm/pipelines/{version}/…``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from crm.sandbox import messages as msg
from crm.sandbox.errors import SandboxHTTPError
from crm.sandbox.objects.types import iso
from crm.sandbox.wire import authorize, bad_request, sandbox_state, versioned

DEFAULT_PIPELINE = "default"
# Stage ids and probabilities of the default pipeline are HubSpot's (HUBSPOT_API.md §4).
DEFAULT_STAGES = (
    ("appointmentscheduled", "Appointment Scheduled", "0.2", "false"),
    ("qualifiedtobuy", "Qualified To Buy", "0.4", "false"),
    ("presentationscheduled", "Presentation Scheduled", "0.6", "false"),
    ("decisionmakerboughtin", "Decision Maker Bought-In", "0.8", "false"),
    ("contractsent", "Contract Sent", "0.9", "false"),
    ("closedwon", "Closed Won", "1.0", "true"),
    ("closedlost", "Closed Lost", "0.0", "true"),
)
# Custom pipelines and stages get numeric-string ids in HubSpot.
RENEWALS_PIPELINE = "11348541"
RENEWAL_STAGES = (
    ("11348542", "Renewal Upcoming", "0.3", "false"),
    ("11348543", "In Negotiation", "0.7", "false"),
    ("11348544", "Renewed", "1.0", "true"),
    ("11348545", "Churned", "0.0", "true"),
)
CUSTOM_CREATED = 1_672_531_200_000  # 2023-01-01


class Pipelines:
    """The deal pipelines; lookups used by validation and by the pipeline routes."""

    def __init__(self) -> None:
        self.pipelines: dict[str, dict[str, Any]] = {
            DEFAULT_PIPELINE: _pipeline(DEFAULT_PIPELINE, "Sales Pipeline", 0, DEFAULT_STAGES, 0),
            RENEWALS_PIPELINE: _pipeline(RENEWALS_PIPELINE, "Renewals", 1, RENEWAL_STAGES, CUSTOM_CREATED),
        }
        self._stage_of: dict[str, tuple[str, dict[str, Any]]] = {
            stage["id"]: (pid, stage) for pid, p in self.pipelines.items() for stage in p["stages"]
        }

    def stage_ids(self, pipeline_id: str) -> list[str]:
        pipeline = self.pipelines.get(pipeline_id)
        return [s["id"] for s in pipeline["stages"]] if pipeline else []

    def stage(self, stage_id: str | None) -> dict[str, Any] | None:
        found = self._stage_of.get(stage_id or "")
        return found[1] if found else None

    def pipeline_of_stage(self, stage_id: str) -> str | None:
        found = self._stage_of.get(stage_id)
        return found[0] if found else None


def _pipeline(pid: str, label: str, order: int, stages: tuple[tuple[str, str, str, str], ...], created: int) -> dict[str, Any]:
    return {
        "id": pid,
        "label": label,
        "displayOrder": order,
        "stages": [
            {
                "id": sid,
                "label": slabel,
                "displayOrder": i,
                "metadata": {"isClosed": closed, "probability": probability},
                "createdAt": iso(created),
                "updatedAt": iso(created),
                "archived": False,
                "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
            }
            for i, (sid, slabel, probability, closed) in enumerate(stages)
        ],
        "createdAt": iso(created),
        "updatedAt": iso(created),
        "archived": False,
    }


def _pipelines_for(request: Request) -> Pipelines:
    object_type = request.path_params["objectType"].lower()
    if object_type not in ("deals", "deal", "0-3"):
        raise bad_request(msg.UNKNOWN_OBJECT_TYPE.format(name=request.path_params["objectType"]))
    authorize(request, ["crm.objects.deals.read", "crm.schemas.deals.read", "crm.schemas.deals.write"])
    return sandbox_state(request).pipelines


def _pipeline_for(request: Request) -> dict[str, Any]:
    pipeline = _pipelines_for(request).pipelines.get(request.path_params["pipelineId"])
    if pipeline is None:
        raise SandboxHTTPError(404, msg.crm_error(msg.NOT_FOUND, msg.OBJECT_NOT_FOUND))
    return pipeline


async def get_all(request: Request) -> Response:
    return JSONResponse({"results": list(_pipelines_for(request).pipelines.values())})


async def get_by_id(request: Request) -> Response:
    return JSONResponse(_pipeline_for(request))


async def get_stages(request: Request) -> Response:
    return JSONResponse({"results": _pipeline_for(request)["stages"]})


async def get_stage(request: Request) -> Response:
    for stage in _pipeline_for(request)["stages"]:
        if stage["id"] == request.path_params["stageId"]:
            return JSONResponse(stage)
    raise SandboxHTTPError(404, msg.crm_error(msg.NOT_FOUND, msg.OBJECT_NOT_FOUND))


def routes() -> list[BaseRoute]:
    table: list[BaseRoute] = []
    for p in versioned("/crm/v3/pipelines", "/crm/pipelines/{version}"):
        table += [
            Route(p + "/{objectType}", get_all, methods=["GET"]),
            Route(p + "/{objectType}/{pipelineId}", get_by_id, methods=["GET"]),
            Route(p + "/{objectType}/{pipelineId}/stages", get_stages, methods=["GET"]),
            Route(p + "/{objectType}/{pipelineId}/stages/{stageId}", get_stage, methods=["GET"]),
        ]
    return table
