"""The official `openai` package against horde-server's OpenAI-compatible front.

Usage: openai_sdk.py BASE_URL API_KEY MODEL. Prints one JSON object: for each call, its id,
its text (streamed calls: the concatenated deltas), finish reason and usage; and the errors the
SDK raised for a bad key and a bad value.
"""

import json
import sys

import openai

base, key, model = sys.argv[1], sys.argv[2], sys.argv[3]
client = openai.OpenAI(base_url=base, api_key=key, max_retries=0, timeout=120)
out = {}

done = client.completions.create(model=model, prompt="Once upon a time", max_tokens=24, seed=7)
out["completion"] = {
    "id": done.id,
    "text": done.choices[0].text,
    "finish": done.choices[0].finish_reason,
    "usage": done.usage.completion_tokens,
}

text, ident, finish = "", None, None
for chunk in client.completions.create(model=model, prompt="The horde", max_tokens=24, stream=True):
    ident = chunk.id
    for choice in chunk.choices:
        text += choice.text or ""
        finish = choice.finish_reason or finish
out["completion_stream"] = {"id": ident, "text": text, "finish": finish}

messages = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Say something about kudos."},
]
chat = client.chat.completions.create(model=model, messages=messages, max_tokens=24)
out["chat"] = {
    "id": chat.id,
    "text": chat.choices[0].message.content,
    "role": chat.choices[0].message.role,
    "finish": chat.choices[0].finish_reason,
}

text, ident, finish, usage, role = "", None, None, None, None
stream = client.chat.completions.create(
    model=model,
    messages=messages,
    max_tokens=24,
    stream=True,
    stream_options={"include_usage": True},
)
for chunk in stream:
    ident = chunk.id
    if chunk.usage is not None:
        usage = chunk.usage.total_tokens
    for choice in chunk.choices:
        role = choice.delta.role or role
        text += choice.delta.content or ""
        finish = choice.finish_reason or finish
out["chat_stream"] = {"id": ident, "text": text, "finish": finish, "usage": usage, "role": role}

try:
    openai.OpenAI(base_url=base, api_key="not-a-key", max_retries=0).completions.create(
        model=model, prompt="x", max_tokens=16
    )
    out["bad_key"] = "accepted"
except openai.AuthenticationError as e:
    out["bad_key"] = {"status": e.status_code, "code": e.code}

try:
    client.completions.create(model=model, prompt="x", max_tokens=16, temperature=9)
    out["bad_value"] = "accepted"
except openai.BadRequestError as e:
    out["bad_value"] = {"status": e.status_code, "param": e.param}

print(json.dumps(out))
