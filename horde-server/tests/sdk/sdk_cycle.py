"""A full text-generation cycle through the Python horde-sdk, against a running horde-server.

Usage: AI_HORDE_URL=http://127.0.0.1:PORT/api/ python sdk_cycle.py REQUESTER_KEY WORKER_KEY
Exits non-zero (with the SDK's error) if any step fails; prints one line per step.
"""

import json
import os
import sys
import urllib.request

from horde_sdk import RequestErrorResponse
from horde_sdk.ai_horde_api.ai_horde_clients import AIHordeAPIManualClient
from horde_sdk.ai_horde_api.apimodels import (
    AIHordeHeartbeatRequest,
    AIHordeHeartbeatResponse,
    AllWorkersDetailsRequest,
    AllWorkersDetailsResponse,
    DeleteWorkerRequest,
    DeleteWorkerResponse,
    FindUserRequest,
    HordeModes,
    HordePerformanceRequest,
    HordePerformanceResponse,
    HordeStatusModelsAllRequest,
    HordeStatusModelsAllResponse,
    HordeStatusModelsSingleRequest,
    HordeStatusModelsSingleResponse,
    NewsRequest,
    NewsResponse,
    ModelGenerationInputKobold,
    ModifyWorkerRequest,
    ModifyWorkerResponse,
    SingleUserDetailsRequest,
    SingleWorkerDetailsRequest,
    SingleWorkerDetailsResponse,
    UserDetailsResponse,
    TextGenerateAsyncRequest,
    TextGenerateAsyncResponse,
    TextGenerateJobPopRequest,
    TextGenerateJobPopResponse,
    TextGenerateStatusRequest,
    TextGenerateStatusResponse,
    TextGenerationJobSubmitRequest,
    TextStatsModelResponse,
    TextStatsModelsRequest,
)
from horde_sdk.ai_horde_api.consts import GENERATION_STATE
from horde_sdk.ai_horde_api.apimodels.base import JobSubmitResponse

MODEL = "koboldcpp/Llama-3-8B-Instruct.Q4_K_M"


def call(client, request, expected):
    response = client.submit_request(request, expected)
    if isinstance(response, RequestErrorResponse):
        sys.exit(f"{type(request).__name__} failed: {response}")
    if not isinstance(response, expected):
        sys.exit(f"{type(request).__name__}: expected {expected.__name__}, got {response!r}")
    return response


def main() -> None:
    requester_key, worker_key = sys.argv[1], sys.argv[2]
    client = AIHordeAPIManualClient()

    queued = call(
        client,
        TextGenerateAsyncRequest(
            apikey=requester_key,
            prompt="The horde SDK says hello to",
            params=ModelGenerationInputKobold(max_length=80, max_context_length=1024, temperature=0.7, n=1),
            models=[MODEL],
        ),
        TextGenerateAsyncResponse,
    )
    print(f"async: id={queued.id_} kudos={queued.kudos}")

    waiting = call(client, TextGenerateStatusRequest(id=queued.id_), TextGenerateStatusResponse)
    assert waiting.waiting == 1 and not waiting.done, waiting
    print(f"status: waiting={waiting.waiting} queue_position={waiting.queue_position}")

    job = call(
        client,
        TextGenerateJobPopRequest(
            apikey=worker_key,
            name="sdk-worker",
            models=[MODEL],
            bridge_agent="horde-sdk-test:1:none",
            max_length=512,
            max_context_length=2048,
            priority_usernames=[],
            nsfw=False,
            threads=1,
            amount=1,
        ),
        TextGenerateJobPopResponse,
    )
    assert job.id_ is not None, job
    assert job.payload.prompt == "The horde SDK says hello to", job.payload
    assert job.model == MODEL, job.model
    print(f"pop: id={job.id_} model={job.model} max_length={job.payload.max_length}")

    submitted = call(
        client,
        TextGenerationJobSubmitRequest(
            apikey=worker_key,
            id=job.id_,
            generation=" a self-hosted horde written in Rust.",
            state=GENERATION_STATE.ok,
        ),
        JobSubmitResponse,
    )
    print(f"submit: reward={submitted.reward}")

    done = call(client, TextGenerateStatusRequest(id=queued.id_), TextGenerateStatusResponse)
    assert done.done and done.finished == 1, done
    assert done.generations[0].text == " a self-hosted horde written in Rust.", done.generations
    assert done.generations[0].worker_name == "sdk-worker", done.generations
    print(f"done: text={done.generations[0].text!r} kudos={done.kudos}")

    # The other answers a client or a worker reads, parsed by the SDK's models.
    call(client, AIHordeHeartbeatRequest(), AIHordeHeartbeatResponse)
    perf = call(client, HordePerformanceRequest(), HordePerformanceResponse)
    assert perf.text_worker_count == 1, perf
    # horde-sdk 0.18 sends type=image whatever type_ says, so only the shape is checked here
    # (the HTTP tests check the content).
    call(client, HordeStatusModelsAllRequest(type_="text"), HordeStatusModelsAllResponse)
    one_model = call(
        client, HordeStatusModelsSingleRequest(model_name=MODEL), HordeStatusModelsSingleResponse
    )
    assert [m.name for m in one_model.root] == [MODEL], one_model
    per_model = call(client, TextStatsModelsRequest(), TextStatsModelResponse)
    assert per_model.total == {MODEL: 1} and per_model.day == {MODEL: 1}, per_model
    # horde-sdk 0.18 has the model of /status/modes but no request for it.
    with urllib.request.urlopen(os.environ["AI_HORDE_URL"].rstrip("/") + "/v2/status/modes") as answer:
        modes = HordeModes.model_validate(json.load(answer))
    assert not modes.maintenance_mode and not modes.raid_mode, modes
    news = call(client, NewsRequest(), NewsResponse)
    assert news.root[0].newspiece == "The sdk test's horde is open.", news
    me = call(client, FindUserRequest(apikey=worker_key), UserDetailsResponse)
    assert me.kudos > 0, me
    someone = call(client, SingleUserDetailsRequest(user_id=str(me.id_)), UserDetailsResponse)
    assert someone.username == me.username, someone
    # As with models, the SDK asks for type=image: only the shape is checked.
    call(client, AllWorkersDetailsRequest(apikey=worker_key), AllWorkersDetailsResponse)
    worker_id = me.worker_ids[0]
    one = call(
        client,
        SingleWorkerDetailsRequest(apikey=worker_key, worker_id=worker_id),
        SingleWorkerDetailsResponse,
    )
    assert one.name == "sdk-worker", one
    changed = call(
        client,
        ModifyWorkerRequest(apikey=worker_key, worker_id=worker_id, info="runs in a test"),
        ModifyWorkerResponse,
    )
    assert changed.info == "runs in a test", changed
    gone = call(
        client,
        DeleteWorkerRequest(apikey=worker_key, worker_id=worker_id),
        DeleteWorkerResponse,
    )
    assert gone.deleted_id == worker_id and gone.deleted_name == "sdk-worker", gone
    print(
        "others: heartbeat, performance, models, one model, stats per model, modes, news, "
        "find_user, "
        "users/{id}, "
        "workers, modify worker, delete worker"
    )
    print("sdk cycle: ok")


if __name__ == "__main__":
    main()
