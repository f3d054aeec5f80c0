"""The API's language features: aliases, versions, per-language limits, compile limits,
base64 data files, signal names, and unknown fields refused."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from tests.support.factories import user


async def run(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> httpx.Response:
    return await client.post("/api/v1/sandbox/executions?wait=true", json=body, headers=headers)


async def languages(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    listed = (await client.get("/api/v1/sandbox/languages")).json()
    return {item["id"]: item for item in listed}


async def test_an_alias_runs_its_language_and_is_stored_as_the_id(
    client: httpx.AsyncClient,
) -> None:
    ada = await user(client, "ada")
    body = (await run(client, ada, language="py", source="print('via alias')")).json()
    assert (body["status"], body["language"], body["stdout"]) == (
        "succeeded",
        "python",
        "via alias\n",
    )


async def test_a_matching_version_runs_and_another_is_a_422_naming_the_available_one(
    client: httpx.AsyncClient,
) -> None:
    ada = await user(client, "ada")
    installed = (await languages(client))["python"]["version"]
    major_minor = ".".join(installed.split(".")[:2])
    ok = await run(client, ada, language="python", version=major_minor, source="print(1)")
    assert ok.json()["status"] == "succeeded"
    refused = await run(client, ada, language="python", version="2.7", source="print 1")
    assert refused.status_code == 422
    assert refused.json()["code"] == "version_unavailable"
    assert refused.json()["available_versions"] == [installed]
    assert installed in refused.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"language": "python", "source": "1", "timeout": 5},
        {"language": "python", "files": [{"name": "a.py", "content": "1", "mode": "0755"}]},
        {"language": "python", "source": "1", "compile_limits": {"network": True}},
    ],
)
async def test_unknown_fields_are_refused_not_ignored(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    ada = await user(client, "ada")
    response = await run(client, ada, **body)
    assert response.status_code == 422
    assert (await client.get("/api/v1/sandbox/executions", headers=ada)).json()["items"] == []


async def test_base64_files_reach_the_program_as_bytes(client: httpx.AsyncClient) -> None:
    ada = await user(client, "ada")
    data = bytes(range(256))
    files = [
        {
            "name": "main.py",
            "content": "d = open('blob.bin','rb').read()\nprint(len(d), d[0], d[255])",
        },
        {"name": "blob.bin", "content": base64.b64encode(data).decode(), "encoding": "base64"},
    ]
    body = (await run(client, ada, language="python", files=files)).json()
    assert body["stdout"] == "256 0 255\n"


async def test_invalid_base64_is_a_422_naming_the_file(client: httpx.AsyncClient) -> None:
    ada = await user(client, "ada")
    files = [{"name": "main.py", "content": "not base64!", "encoding": "base64"}]
    response = await run(client, ada, language="python", files=files)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.files.0.content"


async def test_non_ascii_base64_is_a_422_not_a_500(client: httpx.AsyncClient) -> None:
    ada = await user(client, "ada")
    files = [{"name": "main.py", "content": "\u0081AAA", "encoding": "base64"}]
    response = await run(client, ada, language="python", files=files)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.files.0.content"


async def test_languages_list_per_language_limits_and_maxima(client: httpx.AsyncClient) -> None:
    listed = await languages(client)
    assert "c++" in listed["cpp"]["aliases"]
    assert listed["java"]["maxima"]["memory_mb"] > listed["c"]["maxima"]["memory_mb"]
    assert listed["c"]["compile_limits"]["cpu_time_ms"] > 0
    assert listed["python"]["compile_limits"] is None


async def test_limits_within_a_languages_own_maxima_are_accepted(client: httpx.AsyncClient) -> None:
    ada = await user(client, "ada")
    listed = await languages(client)
    java_max = listed["java"]["maxima"]["memory_mb"]
    too_much_for_c = await run(
        client, ada, language="c", source="int main(){}", limits={"memory_mb": java_max}
    )
    assert too_much_for_c.status_code == 422
    assert too_much_for_c.json()["errors"][0]["field"] == "body.limits.memory_mb"


async def test_compile_limits_apply_to_the_compile_phase(client: httpx.AsyncClient) -> None:
    ada = await user(client, "ada")
    body = (
        await run(
            client,
            ada,
            language="c",
            source="int main(){return 0;}",
            compile_limits={"cpu_time_ms": 5000, "wall_time_ms": 9000},
        )
    ).json()
    assert body["status"] == "succeeded"
    assert body["compile_limits"]["cpu_time_ms"] == 5000
    listed = await languages(client)
    over = await run(
        client,
        ada,
        language="c",
        source="int main(){}",
        compile_limits={"memory_mb": listed["c"]["compile_maxima"]["memory_mb"] + 1},
    )
    assert over.status_code == 422
    assert over.json()["errors"][0]["field"] == "body.compile_limits.memory_mb"


async def test_compile_limits_for_an_interpreted_language_are_refused(
    client: httpx.AsyncClient,
) -> None:
    ada = await user(client, "ada")
    response = await run(
        client, ada, language="python", source="1", compile_limits={"cpu_time_ms": 1}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.compile_limits"


async def test_a_signal_death_reports_the_signal_name(client: httpx.AsyncClient) -> None:
    ada = await user(client, "ada")
    body = (await run(client, ada, language="bash", source="kill -SEGV $$")).json()
    assert (body["signal"], body["signal_name"], body["exit_code"]) == (11, "SIGSEGV", 139)


async def test_java_runs_whatever_its_public_class_is_called(client: httpx.AsyncClient) -> None:
    ada = await user(client, "ada")
    source = 'public class HelloWorld { public static void main(String[] a) { System.out.println("hi"); } }'
    body = (await run(client, ada, language="java", source=source)).json()
    assert (body["status"], body["stdout"]) == ("succeeded", "hi\n"), body["compile_output"]


async def test_arguments_to_a_language_without_them_are_refused(client: httpx.AsyncClient) -> None:
    ada = await user(client, "ada")
    response = await run(client, ada, language="sql", source="SELECT 1;", args=["x"])
    assert response.status_code == 422
    assert "arguments" in response.json()["detail"]
