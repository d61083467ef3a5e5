"""Deal and ticket pipelines, read-only.

Deals: HubSpot's default Sales Pipeline plus one custom pipeline; stages carry
``probability`` and ``isClosed``. Tickets: the default Support Pipeline plus one custom
pipeline; stages carry ``ticketState`` ``OPEN``/``CLOSED`` (docs/INTERACTIONS_API.md §3).

``GET /crm/v3/pipelines/{deals|tickets}``, ``…/{pipelineId}``, ``…/{pipelineId}/stages`` and
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
# The default ticket pipeline's ids are observed, not documented (docs/INTERACTIONS_API.md §3).
DEFAULT_TICKET_PIPELINE = "0"
TICKET_STAGES = (
    ("1", "New", "OPEN"),
    ("2", "Waiting on contact", "OPEN"),
    ("3", "Waiting on us", "OPEN"),
    ("4", "Closed", "CLOSED"),
)
ESCALATIONS_PIPELINE = "27461903"
ESCALATION_STAGES = (
    ("27461904", "Escalated", "OPEN"),
    ("27461905", "With engineering", "OPEN"),
    ("27461906", "Resolved", "CLOSED"),
)


class Pipelines:
    """Deal pipelines (``pipelines``) and ticket pipelines (``tickets``); lookups for validation and routes."""

    def __init__(self) -> None:
        self.pipelines: dict[str, dict[str, Any]] = {
            DEFAULT_PIPELINE: _pipeline(DEFAULT_PIPELINE, "Sales Pipeline", 0, DEFAULT_STAGES, 0),
            RENEWALS_PIPELINE: _pipeline(RENEWALS_PIPELINE, "Renewals", 1, RENEWAL_STAGES, CUSTOM_CREATED),
        }
        self.tickets: dict[str, dict[str, Any]] = {
            DEFAULT_TICKET_PIPELINE: _ticket_pipeline(
                DEFAULT_TICKET_PIPELINE, "Support Pipeline", 0, TICKET_STAGES, 0
            ),
            ESCALATIONS_PIPELINE: _ticket_pipeline(
                ESCALATIONS_PIPELINE, "Escalations", 1, ESCALATION_STAGES, CUSTOM_CREATED
            ),
        }
        self.by_type = {"deals": self.pipelines, "tickets": self.tickets}
        self._stage_of: dict[str, tuple[str, dict[str, Any]]] = {
            stage["id"]: (pid, stage) for pid, p in self.pipelines.items() for stage in p["stages"]
        }
        self._ticket_stage_of: dict[str, tuple[str, dict[str, Any]]] = {
            stage["id"]: (pid, stage) for pid, p in self.tickets.items() for stage in p["stages"]
        }

    def is_ticket_closed(self, stage_id: str | None) -> bool:
        found = self._ticket_stage_of.get(stage_id or "")
        return found is not None and found[1]["metadata"]["ticketState"] == "CLOSED"

    def stage_ids(self, pipeline_id: str, object_type: str = "deals") -> list[str]:
        pipeline = self.by_type[object_type].get(pipeline_id)
        return [s["id"] for s in pipeline["stages"]] if pipeline else []

    def stage(self, stage_id: str | None) -> dict[str, Any] | None:
        found = self._stage_of.get(stage_id or "")
        return found[1] if found else None

    def pipeline_of_stage(self, stage_id: str) -> str | None:
        found = self._stage_of.get(stage_id)
        return found[0] if found else None


def _pipeline(
    pid: str, label: str, order: int, stages: tuple[tuple[str, str, str, str], ...], created: int
) -> dict[str, Any]:
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


def _ticket_pipeline(
    pid: str, label: str, order: int, stages: tuple[tuple[str, str, str], ...], created: int
) -> dict[str, Any]:
    pipeline = _pipeline(
        pid, label, order, tuple((sid, slabel, "", "") for sid, slabel, _ in stages), created
    )
    for stage, (_, _, ticket_state) in zip(pipeline["stages"], stages, strict=True):
        stage["metadata"] = {"ticketState": ticket_state}
    return pipeline


# Who may read each type's pipelines: the object's read scope or the schema scopes.
PIPELINE_SCOPES = {
    "deals": ["crm.objects.deals.read", "crm.schemas.deals.read", "crm.schemas.deals.write"],
    "tickets": ["tickets", "crm.objects.tickets.read", "crm.schemas.tickets.read", "automation"],
}
_PIPELINE_TYPES = {
    "deals": "deals",
    "deal": "deals",
    "0-3": "deals",
    "tickets": "tickets",
    "ticket": "tickets",
    "0-5": "tickets",
}


def _pipelines_for(request: Request) -> dict[str, dict[str, Any]]:
    object_type = _PIPELINE_TYPES.get(request.path_params["objectType"].lower())
    if object_type is None:
        raise bad_request(msg.UNKNOWN_OBJECT_TYPE.format(name=request.path_params["objectType"]))
    authorize(request, PIPELINE_SCOPES[object_type])
    return sandbox_state(request).pipelines.by_type[object_type]


def _pipeline_for(request: Request) -> dict[str, Any]:
    pipeline = _pipelines_for(request).get(request.path_params["pipelineId"])
    if pipeline is None:
        raise SandboxHTTPError(404, msg.crm_error(msg.NOT_FOUND, msg.OBJECT_NOT_FOUND))
    return pipeline


async def get_all(request: Request) -> Response:
    return JSONResponse({"results": list(_pipelines_for(request).values())})


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
