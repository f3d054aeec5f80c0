"""The language registry: data loading, aliases, versions, limits and command rendering.

Real programs in every language are in test_conformance.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from coderoom.sandbox import Engine, Program, Status
from coderoom.sandbox.languages import (
    Language,
    LanguageDataError,
    LanguageNotFound,
    LanguageRegistry,
    LanguageSpec,
    VersionNotAvailable,
    load_specs,
    shipped_specs,
)
from coderoom.sandbox.policy import CEILING, COMPILE_CEILING, MAXIMA, Limits
from tests.sandbox.conftest import REGISTRY, REQUIRED_LANGUAGES
from tests.support.services import unavailable

TOY = """
[[language]]
id = "toy"
name = "Toy"
file_name = "main.toy"
executables = ["/usr/bin/true"]
version = { command = ["/bin/echo", "toy 1.2.3"], pattern = 'toy (\\S+)' }
run = ["{exe}", "{entry}"]
"""


def spec(language_id: str) -> LanguageSpec:
    return next(s for s in shipped_specs() if s.id == language_id)


def data_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "languages.toml"
    path.write_text(text)
    return path


def test_required_languages_are_present_under_ci() -> None:
    missing = REQUIRED_LANGUAGES - set(REGISTRY.ids())
    if missing:  # fails under CI, skips with the reason on a laptop without them
        unavailable("Language runtimes", f"not installed here: {sorted(missing)}")


def test_the_registry_ships_at_least_forty_languages() -> None:
    assert len(shipped_specs()) >= 40


def test_issue_aliases_name_their_language() -> None:
    wanted = {"py": "python", "python3": "python", "js": "javascript", "node": "javascript"}
    wanted |= {"c++": "cpp", "sh": "bash", "ts": "typescript", "c#": "csharp"}
    owners = {alias: s.id for s in shipped_specs() for alias in s.aliases}
    assert {alias: owners.get(alias) for alias in wanted} == wanted


def test_every_language_defaults_within_its_maxima_and_maxima_within_the_ceiling() -> None:
    for s in shipped_specs():
        assert s.limits.problems(s.maxima) == {}, s.id
        assert s.maxima.problems(CEILING) == {}, s.id
        assert s.compile_limits.problems(s.compile_maxima) == {}, s.id
        assert s.compile_maxima.problems(COMPILE_CEILING) == {}, s.id


def test_jvm_languages_get_more_memory_than_c() -> None:
    for language_id in ("java", "kotlin", "scala", "clojure", "groovy", "csharp"):
        assert spec(language_id).maxima.memory_mb > spec("c").maxima.memory_mb, language_id
    assert spec("c").maxima == MAXIMA


def test_java_sources_are_saved_under_their_public_class_name() -> None:
    java = spec("java")
    source = "// public class Fake\nimport java.util.*;\n\npublic final class Solution {}\n"
    assert java.entry_name(source) == "Solution.java"
    assert java.entry_name("class Helper {}\n") == "Main.java"
    assert spec("python").entry_name("anything") == "main.py"


def test_an_operator_file_adds_a_language_and_replaces_a_shipped_one(tmp_path: Path) -> None:
    extra = TOY + '\n[[language]]\nid = "python"\nname = "Mine"\nfile_name = "m.py"\n'
    extra += 'executables = ["/usr/bin/python3"]\nrun = ["{exe}", "{entry}"]\n'
    specs = {s.id: s for s in load_specs(data_file(tmp_path, extra))}
    assert specs["toy"].name == "Toy"
    assert specs["python"].name == "Mine"
    assert len(specs) == len(shipped_specs()) + 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (TOY + "colour = 'red'\n", "unknown keys"),
        (TOY.replace('id = "toy"', 'id = "Toy!"'), "lower case"),
        (TOY + "maxima = { memory_mb = 999999 }\n", "memory_mb: must be at most"),
        (TOY + "limits = { memory_mb = 2000 }\n", "memory_mb: must be at most 1024"),
        (TOY + 'aliases = ["py"]\n', "names both"),
        (TOY + "main_pattern = '('\n", "main_pattern"),
        ("[server]\nport = 1\n", r"only \[\[language\]\]"),
    ],
)
def test_bad_language_data_is_refused_with_the_reason(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(LanguageDataError, match=message):
        load_specs(data_file(tmp_path, text))


def test_the_allow_list_keeps_only_the_named_languages() -> None:
    registry = LanguageRegistry.detect(allow={"python", "bash"})
    assert registry.ids() == sorted({"python", "bash"} & set(REGISTRY.ids()))


def test_an_allow_list_naming_an_unknown_id_is_refused() -> None:
    with pytest.raises(LanguageDataError, match="pyton"):
        LanguageRegistry.detect(allow={"pyton"})


def test_a_language_whose_runtime_is_missing_is_not_listed(tmp_path: Path) -> None:
    missing = TOY.replace("/usr/bin/true", "/nonexistent/toy")
    assert (
        LanguageRegistry.detect(
            [s for s in load_specs(data_file(tmp_path, missing)) if s.id == "toy"]
        ).ids()
        == []
    )


def test_resolve_takes_ids_and_aliases_and_checks_the_version(tmp_path: Path) -> None:
    registry = LanguageRegistry.detect(load_specs(data_file(tmp_path, TOY + 'aliases = ["t"]\n')))
    assert registry.resolve("t").id == "toy"
    for version in ("1", "1.2", "1.2.3"):
        assert registry.resolve("toy", version).version == "1.2.3"
    with pytest.raises(VersionNotAvailable) as caught:
        registry.resolve("toy", "1.20")
    assert caught.value.available == ["1.2.3"]
    with pytest.raises(LanguageNotFound) as unknown:
        registry.resolve("nope")
    assert "toy" in unknown.value.known


def toy(**overrides: object) -> Language:
    base = {
        "id": "toy",
        "name": "Toy",
        "file_name": "main.toy",
        "executables": ("/usr/bin/toyc",),
        "run": ("./main",),
        "extensions": (".toy",),
    }
    return Language(
        spec=LanguageSpec(**{**base, **overrides}),  # type: ignore[arg-type]
        version="1",
        executable="/usr/bin/toyc",
        binds=(),
        path="/usr/bin",
        extra={"ld": "/usr/bin/ld"},
    )


def test_a_step_with_source_repeats_per_file_and_objects_name_their_outputs() -> None:
    language = toy(
        compile=(("{exe}", "-o", "{source}.o", "{source}"), ("{ld}", "-o", "main", "{objects}"))
    )
    steps, run = language.commands(file_names=["main.toy", "lib.toy", "data.txt"], memory_mb=64)
    assert steps == [
        ["/usr/bin/toyc", "-o", "main.toy.o", "main.toy"],
        ["/usr/bin/toyc", "-o", "lib.toy.o", "lib.toy"],
        ["/usr/bin/ld", "-o", "main", "main.toy.o", "lib.toy.o"],
    ]
    assert run == ["./main"]


def test_entry_last_puts_the_entry_after_the_other_sources() -> None:
    language = toy(compile=(("{exe}", "{sources}"),), entry_last=True)
    steps, _ = language.commands(file_names=["main.toy", "a.toy", "b.toy"], memory_mb=64)
    assert steps == [["/usr/bin/toyc", "a.toy", "b.toy", "main.toy"]]


def test_heap_placeholders_follow_the_memory_limit() -> None:
    language = toy(run=("{exe}", "-Xmx{heap_mb}m", "-XX:MaxRAM={memory_mb}m"))
    _, run = language.commands(file_names=["main.toy"], memory_mb=512)
    assert run == ["/usr/bin/toyc", "-Xmx384m", "-XX:MaxRAM=512m"]


async def test_programs_may_create_files_in_the_workspace(engine: Engine) -> None:
    source = "open('out.txt','w').write('kept'); print(open('out.txt').read())"
    result = await engine.run("python", Program.single("main.py", source))
    assert result.stdout == "kept\n"


async def test_runs_report_time_and_memory(engine: Engine) -> None:
    result = await engine.run("python", Program.single("main.py", "print(1)"), Limits())
    assert result.status is Status.SUCCEEDED
    assert result.wall_time_ms is not None
    assert result.cpu_time_ms is not None
    assert result.memory_kb is not None
    assert 0 < result.memory_kb <= 256 * 1024


def test_docs_list_every_language_with_its_aliases() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "LANGUAGES.md").read_text()
    rows = {
        line.split("|")[1].strip(" `"): line for line in doc.splitlines() if line.startswith("| `")
    }
    for s in shipped_specs():
        assert s.id in rows, s.id
        assert all(f"`{alias}`" in rows[s.id] for alias in s.aliases), s.id
    assert f"**{len(shipped_specs())} languages**" in doc
