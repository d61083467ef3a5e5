"""Call transcripts: the calling-extensions transcripts API, read-only (docs/INTERACTIONS_API.md §2).

``GET /crm/extensions/calling/{version}/transcripts/{transcriptId}`` and the v3 twin
``/crm/v3/extensions/calling/transcripts/{transcriptId}``, needing
``crm.extensions_calling_transcripts.read``. A seeded call with a transcript names it in
``hs_call_transcription_id`` (a property HubSpot does not document; see the facts doc).

Not modelled: creating transcripts (POST), HubSpot-side transcription of recordings, and
HubSpot's rule that only OAuth tokens may call this API (private-app tokens pass here).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from crm.sandbox import messages as msg
from crm.sandbox.errors import SandboxHTTPError
from crm.sandbox.objects.types import iso
from crm.sandbox.wire import authorize, sandbox_state, versioned

READ_SCOPES = ["crm.extensions_calling_transcripts.read"]


@dataclasses.dataclass
class Utterance:
    speaker_id: str
    speaker_name: str
    text: str
    start_ms: int
    end_ms: int
    language: str = "en-US"
    speaker_email: str | None = None


@dataclasses.dataclass
class Transcript:
    id: str
    call_id: int
    created: int
    utterances: list[Utterance]

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "engagementId": self.call_id,
            "transcriptSource": "INTEGRATOR_GENERATED",
            "transcriptUtterances": [
                {
                    "id": f"{self.id}-{i}",
                    "speaker": {
                        "id": u.speaker_id,
                        "name": u.speaker_name,
                        **({"email": u.speaker_email} if u.speaker_email else {}),
                    },
                    "text": u.text,
                    "languageCode": u.language,
                    "startTimeMillis": u.start_ms,
                    "endTimeMillis": u.end_ms,
                }
                for i, u in enumerate(self.utterances)
            ],
            "createdAt": iso(self.created),
            "updatedAt": iso(self.created),
        }


async def get_transcript(request: Request) -> Response:
    authorize(request, READ_SCOPES)
    state = sandbox_state(request)
    with state.lock:
        transcript = state.transcripts.get(request.path_params["transcriptId"])
        body = transcript.to_wire() if transcript is not None else None
    if body is None:
        raise SandboxHTTPError(404, msg.crm_error(msg.NOT_FOUND, msg.OBJECT_NOT_FOUND))
    return JSONResponse(body)


def routes() -> list[BaseRoute]:
    paths = versioned(
        "/crm/v3/extensions/calling/transcripts", "/crm/extensions/calling/{version}/transcripts"
    )
    return [Route(p + "/{transcriptId}", get_transcript, methods=["GET"]) for p in paths]
